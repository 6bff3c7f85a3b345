import type { promises as fs } from 'node:fs';
import type { Readable } from 'node:stream';
import type { DigestAlgorithm } from '../io/digest.js';
import type { BatchFile, BatchOptions, BatchOutcome } from './batch.js';
import type { PartialInfo } from './partials.js';
import type { SmallOutcome } from './read-batch.js';
import type { ListOptions, StoredEntry, UploadOptions } from './types.js';

/**
 * What the server, the HTTP door, the services and the metrics need of a store, whatever
 * holds the files: the local folder (`Store`) or an S3 bucket (`S3Store`). Both keep the same
 * promises: a file is visible only once whole and verified, no-clobber unless told to
 * overwrite, replacement is atomic, interrupted uploads are kept for resuming.
 */
export interface StoreBackend {
  /** The local folder for the server's own state (certificate, counters): `<root>/.ferry`. */
  readonly stateDir: string;
  /** The local root folder (for S3, only the server's state lives here). */
  readonly root: string;
  /** Where the files are, for logs: the root path or `s3://bucket/prefix`. */
  readonly location: string;
  readonly maxFileSize: number;
  readonly fsync: boolean;
  /** Local files a `storeBatch` call may hold open at once: the server's open-file slots it takes. */
  readonly batchOpenFiles: number;
  readonly quota: number | undefined;
  /** The running totals counted against the quota. */
  readonly space: SpaceUse;
  readonly partials: KeptPartials;

  stat(name: string, algorithm?: DigestAlgorithm): Promise<StoredEntry>;
  /** Opens a file for download; reads keep getting this version even if it is replaced. */
  openRead(name: string, algorithm?: DigestAlgorithm): Promise<OpenedFile>;
  list(prefix: string, recursive: boolean, options?: ListOptions): Promise<StoredEntry[]>;
  listStream(prefix: string, recursive: boolean, options?: ListOptions): AsyncIterable<StoredEntry[]>;
  /**
   * One page of a folder's own listing (LIST with PAGE, v7): the entries of the non-recursive
   * `list`, in its order, whose names sort after `after` ('' from the start), at most `limit`;
   * fewer only when the folder has no more. Holds about a page, never the whole folder.
   */
  listPage(prefix: string, after: string, limit: number, options?: ListOptions): Promise<StoredEntry[]>;
  checkUpload(name: string, options: UploadOptions): Promise<void>;
  exists(name: string): Promise<boolean>;
  beginUpload(name: string, options?: UploadOptions): Promise<StoreUpload>;
  probeUpload(name: string, size: number, algorithm?: DigestAlgorithm): Promise<{ offset: number; digest: Buffer }>;
  hashPrefix(name: string, length: number, algorithm?: DigestAlgorithm): Promise<{ offset: number; digest: Buffer }>;
  remove(name: string): Promise<void>;
  removeTree(prefix: string): Promise<number>;
  rename(from: string, to: string, options?: { overwrite?: boolean }): Promise<{ kind: 'file' | 'folder' }>;
  makeFolder(name: string): Promise<boolean>;
  /**
   * Stores many small files, each whole in memory, each on its own (atomic per file, not per
   * batch): one outcome per file, in order, once every stored one is durable.
   */
  storeBatch(files: BatchFile[], options?: BatchOptions): Promise<BatchOutcome[]>;
  /**
   * (Optional) Reads many small files at once (GET_BATCH): per name, in order, the file whole
   * and verified against its digest, `large` (over `maxBytes`), or the error a GET of it would
   * get; `undefined` for a file the caller must read through `openRead`. Without it, files are
   * read one by one through `openRead` (read-batch.ts).
   */
  readSmallFiles?(names: string[], algorithm: DigestAlgorithm, maxBytes: number): Promise<(SmallOutcome | undefined)[]>;
  close(): Promise<void>;
}

/** The space counted against the quota, as running totals (see SpaceLedger). */
export interface SpaceUse {
  quota: number | undefined;
  /** Stored files (tracked only with a quota: 0 without). */
  stored: number;
  /** Kept partial uploads. */
  partials: number;
  /** Promised to uploads in progress. */
  reserved: number;
}


/** The interrupted uploads a store keeps (as far as this server knows them). */
export interface KeptPartials {
  readonly count: number;
  list(): PartialInfo[];
  /** Bytes kept for (name, size), 0 for none. */
  sizeOf(name: string, size: number): number;
  discard(name: string, size: number): Promise<void>;
}

/** Where an upload's bytes go while it runs; `write` returning false means wait for `onDrain`. */
export interface UploadSink {
  /** Bytes accepted so far (after `offset`). */
  readonly bytes: number;
  onDrain(callback: () => void): void;
}

/**
 * One upload in progress: nothing is visible until `commit` has verified size and digest.
 * Exactly one of `commit` and `abort` must be called.
 */
export interface StoreUpload {
  readonly name: string;
  /** The algorithm this upload is verified in. */
  readonly algorithm: DigestAlgorithm;
  /** Bytes already held from an interrupted upload; the body continues from here. */
  readonly offset: number;
  /** Digest of the first `offset` bytes. */
  readonly prefixDigest: Buffer;
  readonly sink: UploadSink;
  /** False: pause the source until `sink.onDrain`. `release` is called once the chunk's memory is free. */
  write(chunk: Buffer, release?: () => void): boolean;
  commit(expected: { size?: number; digest?: Buffer }): Promise<StoredEntry>;
  /** With `keepPartial`, the bytes received are kept for a resume (when the size was declared). */
  abort(keepPartial?: boolean): Promise<void>;
}

/**
 * A file opened for download. A local file offers its handle (the pread fast path); a remote
 * one offers ranged streams. Either way `closeFile` releases it and `readRange` streams it.
 */
export type OpenedFile = LocalFile | RemoteFile;

export interface FileFacts {
  size: number;
  mtimeMs: number;
  /** In the algorithm the caller asked for. */
  digest: Buffer;
}

export interface LocalFile extends FileFacts {
  handle: fs.FileHandle;
}

export interface RemoteFile extends FileFacts {
  handle?: undefined;
  /** The bytes start..end (inclusive, as fs streams count) of this version, fetched once read. */
  read(start: number, end: number, chunk: number): Readable;
  close(): Promise<void>;
}

export function closeFile(file: OpenedFile): Promise<void> {
  return file.handle ? file.handle.close() : file.close();
}

/**
 * The bytes start..end (inclusive) in chunks of about `chunk` bytes. The stream owns the file
 * from here: it closes it when it ends or is destroyed.
 */
export function readRange(file: OpenedFile, start: number, end: number, chunk: number): Readable {
  if (file.handle) return file.handle.createReadStream({ start, end, highWaterMark: chunk, autoClose: true });
  return file.read(start, end, chunk);
}
