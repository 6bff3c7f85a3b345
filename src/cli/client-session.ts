import { connect, type FerryClient } from '../client/client.js';
import { withConnection } from './download-session.js';
import type { ClientOptions } from './session.js';

export { warnIfNoBlake3 } from './download-session.js';

/**
 * The full client for the commands that move files (put, get, rm, roundtrip): kept apart from
 * session.ts so `ferry ls` and `stat` load none of the transfer code, and from
 * download-session.ts so a plain `ferry get` loads none of the upload code.
 */

/** Opens a client to the server named by --server / FERRY_SERVER, runs `work`, closes. */
export function withClient<T>(options: ClientOptions, work: (client: FerryClient) => Promise<T>): Promise<T> {
  return withConnection(options, connect, work);
}
