import { blake3Available, blake3LoadProblem } from '../io/digest.js';
import { connect, type FerryClient } from '../client/client.js';
import { resolveServer } from './address.js';
import { securityOptions, timeoutMs, type ClientOptions } from './session.js';

/**
 * The full client for the commands that move files (put, get, rm, roundtrip): kept apart from
 * session.ts so `ferry ls` and `stat` load none of the transfer code.
 */

/** Opens a client to the server named by --server / FERRY_SERVER, runs `work`, closes. */
export async function withClient<T>(options: ClientOptions, work: (client: FerryClient) => Promise<T>): Promise<T> {
  const { host, port } = resolveServer(options.server);
  warnIfNoBlake3(options.digest);
  const client = await connect({ host, port, clientName: 'ferry-cli', timeoutMs: timeoutMs(options.timeout), digest: options.digest, ...(await securityOptions(options)) });
  try {
    return await work(client);
  } finally {
    await client.close();
  }
}

let warnedNoBlake3 = false;

/** The one warning when BLAKE3 cannot load: transfers still work, verified with SHA-256. */
export function warnIfNoBlake3(digest: ClientOptions['digest']): void {
  if (digest === 'sha256' || warnedNoBlake3 || blake3Available()) return;
  warnedNoBlake3 = true;
  process.stderr.write(`ferry: warning: BLAKE3 is unavailable (${blake3LoadProblem()}); verifying with SHA-256, which costs more CPU\n`);
}
