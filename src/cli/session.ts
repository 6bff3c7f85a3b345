import { promises as fs } from 'node:fs';
import type { ConnectOptions } from '../client/connection.js';
import { connectReader, type FerryReader } from '../client/reader.js';
import { FerryError } from '../errors.js';
import { resolveServer } from './address.js';
import { UsageError } from './exit.js';
import { parseSeconds } from './numbers.js';

export interface ClientOptions {
  server?: string;
  timeout?: string;
  tls?: boolean;
  fingerprint?: string;
  tokenFile?: string;
  digest?: 'auto' | 'sha256';
}

/**
 * Opens a reader to the server named by --server / FERRY_SERVER, runs `work`, closes; for the
 * commands that only list and stat. A reader loads no transfer code and no BLAKE3 binding (it
 * shows the server's digests and computes none, so there is no SHA-256 fallback to warn
 * about). The close is started, not awaited: every reply is in, and the command (which exits
 * once its output is written) need not wait for the server's goodbye; in a process that goes
 * on, the close completes by itself (its grace timer is unref'd). destroy() instead would cost
 * ~1.4 ms of a ~75 ms `ferry ls`: Node's socket teardown runs for the first time.
 * (withClient, for the commands that move files, is in client-session.ts.)
 */
export async function withReader<T>(options: ClientOptions, work: (reader: FerryReader) => Promise<T>): Promise<T> {
  const { host, port } = resolveServer(options.server);
  const reader = await connectReader({ host, port, clientName: 'ferry-cli', timeoutMs: timeoutMs(options.timeout), digest: options.digest, ...(await securityOptions(options)) });
  try {
    return await work(reader);
  } finally {
    void reader.close();
  }
}

/** --timeout in milliseconds (default 30 s); a bad value is a usage error. */
export function timeoutMs(text: string | undefined): number {
  return text === undefined ? 30_000 : parseSeconds(text, '--timeout');
}

/**
 * TLS and token settings from --tls, --fingerprint, --token-file and FERRY_TOKEN. A token is
 * never taken from the command line (it would show in `ps`).
 */
export async function securityOptions(options: Pick<ClientOptions, 'tls' | 'fingerprint' | 'tokenFile'>): Promise<Pick<ConnectOptions, 'tls' | 'token'>> {
  const token = options.tokenFile !== undefined ? await readToken(options.tokenFile) : process.env.FERRY_TOKEN || undefined;
  if (options.fingerprint === undefined && !options.tls) return { token };
  if (options.fingerprint !== undefined && !/^SHA256:[A-Za-z0-9+/]{43}=?$/.test(options.fingerprint.trim())) {
    throw new UsageError(`invalid --fingerprint "${options.fingerprint}": expected SHA256:<base64>, as the server prints at start`);
  }
  return {
    token,
    tls: {
      fingerprint: options.fingerprint,
      onNewHost: ({ server, fingerprint, file }) =>
        process.stderr.write(`ferry: first connection to ${server}; its certificate fingerprint ${fingerprint} is now remembered in ${file}\n`),
    },
  };
}

/** The token in `file`: its first line that is not empty or a # comment, trimmed. */
async function readToken(file: string): Promise<string> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    throw new FerryError('LOCAL_IO', `cannot read the token file ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, { cause: error });
  }
  const line = text.split(/\r?\n/).map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('#'));
  if (line === undefined || /\s/.test(line)) {
    throw new FerryError('LOCAL_IO', `the token file ${file} must hold the token alone on its first line`);
  }
  return line;
}
