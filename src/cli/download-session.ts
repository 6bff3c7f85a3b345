import { blake3Available, blake3LoadProblem } from '../io/digest.js';
import type { ConnectOptions } from '../client/connection.js';
import { connectDownloader, type FerryDownloader } from '../client/downloader.js';
import type { FerryReader } from '../client/reader.js';
import { resolveServer } from './address.js';
import { securityOptions, timeoutMs, type ClientOptions } from './session.js';

/**
 * Sessions for the commands that move files: withDownloader here (a plain `ferry get` of one
 * file, the quick path, loads no upload or batch code), withClient in client-session.ts.
 */

/** Opens a connection with `open` to the server named by --server / FERRY_SERVER, runs `work`, closes. */
export async function withConnection<C extends FerryReader, T>(options: ClientOptions, open: (options: ConnectOptions) => Promise<C>, work: (client: C) => Promise<T>): Promise<T> {
  const { host, port } = resolveServer(options.server);
  warnIfNoBlake3(options.digest);
  const client = await open({ host, port, clientName: 'ferry-cli', timeoutMs: timeoutMs(options.timeout), digest: options.digest, ...(await securityOptions(options)) });
  try {
    return await work(client);
  } finally {
    await client.close();
  }
}

/** withClient for a command that only lists, stats and downloads. */
export function withDownloader<T>(options: ClientOptions, work: (client: FerryDownloader) => Promise<T>): Promise<T> {
  return withConnection(options, connectDownloader, work);
}

let warnedNoBlake3 = false;

/** The one warning when BLAKE3 cannot load: transfers still work, verified with SHA-256. */
export function warnIfNoBlake3(digest: ClientOptions['digest']): void {
  if (digest === 'sha256' || warnedNoBlake3 || blake3Available()) return;
  warnedNoBlake3 = true;
  process.stderr.write(`ferry: warning: BLAKE3 is unavailable (${blake3LoadProblem()}); verifying with SHA-256, which costs more CPU\n`);
}
