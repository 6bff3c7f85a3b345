import { promises as fs } from 'node:fs';
import type { Readable } from 'node:stream';
import { hashPrefix } from '../io/hash-prefix.js';
import { ListFlag } from '../protocol/index.js';
import { putBatch, type BatchPutFile, type BatchPutOptions, type BatchPutResult } from './batch.js';
import { getBatch, type BatchGetResult } from './get-batch.js';
import { bufferSource, fileSource, streamSource } from './body-source.js';
import { Connection, type ConnectOptions } from './connection.js';
import { FerryDownloader } from './downloader.js';
import { openLocal } from './local-files.js';
import { checkedName, partialOf, request } from './requests.js';
import type { PutOptions, TransferResult } from './types.js';
import { AWAIT_READY_THRESHOLD, upload, type Resumable } from './upload.js';

export type { ConnectOptions } from './connection.js';
export { BatchBuilder } from './batch.js';
export { BATCH_GET_MAX_FILE, GetBatchBuilder } from './get-batch.js';
export type { BatchGetResult } from './get-batch.js';
export type { BatchPutFile, BatchPutOptions, BatchPutResult } from './batch.js';
export type { Entry, GetOptions, Progress, PutOptions, TransferResult } from './types.js';

/** Connects to a ferry server and completes the handshake. */
export async function connect(options: ConnectOptions = {}): Promise<FerryClient> {
  return new FerryClient(await Connection.open(options));
}

/**
 * Client for one ferry connection. Calls may be issued concurrently: requests are pipelined
 * on the connection, bodies are sent one after another. A refusal (NOT_FOUND, EXISTS, QUOTA
 * mid-upload, …) rejects that call only; a transport failure rejects every pending and later
 * call. Every call settles within the connection's timeout, and after a failure, close() or
 * destroy() nothing the client made keeps the process alive. (list, listStream, stat, close and
 * destroy are FerryReader's, get is FerryDownloader's.)
 */
export class FerryClient extends FerryDownloader {
  /**
   * Uploads many small files in one request (protocol 5): one result per file, in order, each
   * stored (durably, unless the server runs without fsync), identical, or refused on its own.
   * The files must fit one batch (see BatchBuilder); the call rejects only for the whole
   * request (UNSUPPORTED on an older server, BUSY, a failed connection).
   */
  putBatch(files: BatchPutFile[], options: BatchPutOptions = {}): Promise<BatchPutResult[]> {
    return putBatch(this.connection, files, options);
  }

  /**
   * Downloads many small files in one request (protocol 6) into memory: one result per name,
   * in order — the bytes (verified against the digest sent with them), `large` (over
   * BATCH_GET_MAX_FILE: use `get`), or refused on its own. The names must fit one batch (see
   * GetBatchBuilder); the call rejects only for the whole request (UNSUPPORTED on an older
   * server, BUSY, a failed connection, a malformed reply).
   */
  getBatch(names: string[]): Promise<BatchGetResult[]> {
    return getBatch(this.connection, names);
  }

  remove(name: string): Promise<void> {
    return request(this.connection, (id) => ({ type: 'DELETE', id, name: checkedName(name), flags: 0 }), (message, done) => {
      if (message.type !== 'OK') return false;
      done(undefined);
      return true;
    });
  }

  /** Removes every file under the folder `prefix`. */
  removeTree(prefix: string): Promise<void> {
    return request(
      this.connection,
      (id) => ({ type: 'DELETE', id, name: checkedName(prefix.replace(/\/+$/, '')), flags: ListFlag.RECURSIVE }),
      (message, done) => {
        if (message.type !== 'OK') return false;
        done(undefined);
        return true;
      },
    );
  }

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
