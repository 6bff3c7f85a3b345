import type { Writable } from 'node:stream';
import { Connection, type ConnectOptions } from './connection.js';
import { downloadToFile, downloadToStream } from './download.js';
import { FerryReader } from './reader.js';
import { checkedName } from './requests.js';
import type { GetOptions, TransferResult } from './types.js';

/**
 * A reader that also downloads, in a module of its own: `ferry get` of one file (the CLI's
 * quick path) loads this and not the upload or batch code. FerryClient adds the rest.
 */
export class FerryDownloader extends FerryReader {
  /**
   * Downloads `name` to a local path (via `<path>.ferry-part`, renamed once the digest matches
   * the server's; a second download to the same path meanwhile fails with LOCAL_IO) or into a
   * writable stream (verified at the end).
   */
  async get(name: string, destination: string | Writable, options: GetOptions = {}): Promise<TransferResult> {
    const storedName = checkedName(name);
    if (typeof destination !== 'string') return downloadToStream(this.connection, storedName, destination, options);
    return downloadToFile(this.connection, storedName, destination, options);
  }
}

/** Connects for listing, stat and downloads (the digest offer is a full client's: BLAKE3 only when its binding loads). */
export async function connectDownloader(options: ConnectOptions = {}): Promise<FerryDownloader> {
  return new FerryDownloader(await Connection.open(options));
}
