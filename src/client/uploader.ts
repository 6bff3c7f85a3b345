import type { promises as fs } from 'node:fs';
import type { Readable } from 'node:stream';
import { hashPrefix } from '../io/hash-prefix.js';
import { bufferSource, fileSource, streamSource } from './body-source.js';
import { Connection, type ConnectOptions } from './connection.js';
import { FerryDownloader } from './downloader.js';
import { openLocal } from './local-files.js';
import { checkedName, partialOf } from './requests.js';
import type { PutOptions, TransferResult } from './types.js';
import { AWAIT_READY_THRESHOLD, upload, type Resumable } from './upload.js';

/**
 * A downloader that also uploads one file at a time, in a module of its own: `ferry put` of
 * one file (the CLI's quick path) loads this and not the batch code. FerryClient adds the rest.
 */
export class FerryUploader extends FerryDownloader {
  /**
   * Uploads a local file (path), a Buffer, or a stream as `name`. The server hashes what it
   * receives and must agree with the digest computed here, or the upload is refused whole.
   * A stream source is destroyed if the upload stops before its end (failure or refusal).
   */
  async put(source: string | Buffer | Readable, name: string, options: PutOptions = {}): Promise<TransferResult> {
    const storedName = checkedName(name);
    if (typeof source === 'string') {
      const { handle, size } = await openLocal(source);
      try {
        const resumable = await this.resumableUpload(storedName, size, handle, options);
        return await upload(this.connection, {
          name: storedName,
          size,
          options,
          resumable,
          source: (from) => fileSource(handle, from, size - from, source),
        });
      } finally {
        await handle.close();
      }
    }
    if (Buffer.isBuffer(source)) {
      return upload(this.connection, { name: storedName, size: source.length, options, source: () => bufferSource(source) });
    }
    return upload(this.connection, { name: storedName, size: options.size, options, source: () => streamSource(source) });
  }

  /**
   * Asks the server what it kept of an earlier attempt, and checks that prefix against the
   * local file. The prefix is read once: its hash is continued for the rest of the upload.
   */
  private async resumableUpload(name: string, size: number, handle: fs.FileHandle, options: PutOptions): Promise<Resumable | undefined> {
    if (options.resume === false || size < AWAIT_READY_THRESHOLD || this.connection.version < 2) return undefined;
    const partial = await partialOf(this.connection, (id) => ({ type: 'PROBE_UPLOAD', id, name, size }));
    if (partial.offset === 0 || partial.offset > size) return undefined;
    const hasher = await hashPrefix(handle, partial.offset, this.connection.algorithm);
    if (!hasher.peek().equals(partial.digest)) return undefined; // changed locally: start over
    return { offset: partial.offset, digest: partial.digest, hasher };
  }
}

/** Connects for listing, stat, downloads and single uploads (the digest offer is a full client's). */
export async function connectUploader(options: ConnectOptions = {}): Promise<FerryUploader> {
  return new FerryUploader(await Connection.open(options));
}
