import { ListFlag } from '../protocol/index.js';
import { putBatch, type BatchPutFile, type BatchPutOptions, type BatchPutResult } from './batch.js';
import { getBatch, type BatchGetResult } from './get-batch.js';
import { Connection, type ConnectOptions } from './connection.js';
import { checkedName, request } from './requests.js';
import { FerryUploader } from './uploader.js';

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
 * destroy are FerryReader's, get is FerryDownloader's, put is FerryUploader's.)
 */
export class FerryClient extends FerryUploader {
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
}
