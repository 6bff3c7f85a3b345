import { FerryError, ProtocolError, WireErrorCode } from '../errors.js';
import { digestOf } from '../io/digest.js';
import {
  BATCH_OVERHEAD,
  BatchFlag,
  batchFileWireSize,
  MAX_BATCH_FILES,
  MAX_CONTROL_PAYLOAD,
  type BatchFile,
  type BatchResult,
} from '../protocol/index.js';
import { remoteError, type Connection } from './connection.js';
import { checkedName, request, wireMtime } from './requests.js';
import type { Entry, TransferResult } from './types.js';

/** One small file for `putBatch`: its bytes whole. */
export interface BatchPutFile {
  name: string;
  data: Buffer;
  /** Modification time the stored file gets (ms since the epoch); give it for all files of a batch or none. */
  mtimeMs?: number;
}

export interface BatchPutOptions {
  overwrite?: boolean;
  rename?: boolean;
  /** A file already stored with the same size and digest is left alone (`identical`). */
  skipIdentical?: boolean;
}

/** What became of one file of a batch (each is stored or refused on its own). */
export type BatchPutResult = { status: 'stored'; result: TransferResult } | { status: 'identical'; entry: Entry } | { status: 'refused'; error: FerryError };

/**
 * Packs files into one PUT_BATCH: `fits` says whether another file still goes in (the frame
 * cap and MAX_BATCH_FILES). A file too large for any batch never fits an empty one.
 */
export class BatchBuilder {
  readonly files: BatchPutFile[] = [];
  private bytes = BATCH_OVERHEAD;

  constructor(
    private readonly withMtime: boolean,
    /** Most files this batch takes (at most MAX_BATCH_FILES). */
    private readonly maxFiles = MAX_BATCH_FILES,
  ) {}

  /** Wire bytes `name` and `size` would add. */
  static cost(name: string, size: number, withMtime: boolean): number {
    return batchFileWireSize(Buffer.byteLength(name.normalize('NFC'), 'utf8'), size, withMtime);
  }

  /** Whether a file of this name and size can be carried by a batch at all. */
  static carries(name: string, size: number, withMtime: boolean): boolean {
    return BATCH_OVERHEAD + BatchBuilder.cost(name, size, withMtime) <= MAX_CONTROL_PAYLOAD;
  }

  /** The last cost asked for by `fits`, which `add` is usually called for next. */
  private last = { name: '', size: -1, cost: 0 };

  private costOf(name: string, size: number): number {
    if (this.last.name !== name || this.last.size !== size) this.last = { name, size, cost: BatchBuilder.cost(name, size, this.withMtime) };
    return this.last.cost;
  }

  fits(name: string, size: number): boolean {
    return this.files.length < Math.min(this.maxFiles, MAX_BATCH_FILES) && this.bytes + this.costOf(name, size) <= MAX_CONTROL_PAYLOAD;
  }

  add(file: BatchPutFile): void {
    if (!this.fits(file.name, file.data.length)) throw new RangeError('the batch is full');
    this.files.push(file);
    this.bytes += this.costOf(file.name, file.data.length);
  }
}

/**
 * One PUT_BATCH (PROTOCOL.md §5.5): every file hashed here, sent in one frame, one result per
 * file. The call rejects only for the whole request (UNSUPPORTED, BUSY, the connection).
 */
export async function putBatch(connection: Connection, files: BatchPutFile[], options: BatchPutOptions): Promise<BatchPutResult[]> {
  if (connection.version < 5) {
    throw new FerryError('UNSUPPORTED', `this server speaks protocol ${connection.version}: it cannot take batches (needs 5)`);
  }
  const withMtime = files.some((f) => f.mtimeMs !== undefined);
  if (withMtime && files.some((f) => f.mtimeMs === undefined)) throw new RangeError('give mtimeMs for every file of a batch or for none');
  const builder = new BatchBuilder(withMtime);
  const { algorithm } = connection;
  const wire: BatchFile[] = files.map((file) => {
    const name = checkedName(file.name);
    builder.add({ ...file, name });
    return { name, mtimeMs: file.mtimeMs === undefined ? undefined : wireMtime(file.mtimeMs), digest: digestOf(algorithm, file.data), data: file.data };
  });
  const flags =
    (options.overwrite ? BatchFlag.OVERWRITE : 0) |
    (options.rename ? BatchFlag.RENAME : 0) |
    (withMtime ? BatchFlag.MTIME : 0) |
    (options.skipIdentical ? BatchFlag.SKIP_IDENTICAL : 0);
  const results = await request<BatchResult[]>(connection, (id) => ({ type: 'PUT_BATCH', id, flags, files: wire }), (message, done) => {
    if (message.type !== 'BATCH_RESULTS') return false;
    if (message.results.length !== wire.length) throw new ProtocolError(`${message.results.length} results for a batch of ${wire.length} files`);
    done(message.results);
    return true;
  });
  return results.map((result, i): BatchPutResult => {
    const file = wire[i]!;
    const digest = file.digest.toString('hex');
    if (result.status === 'refused') {
      // The server's text is cut short (PROTOCOL.md §5.5): EXISTS is worded here, as a PUT's would be.
      const text = result.code === WireErrorCode.EXISTS ? `"${file.name}" already exists` : result.message;
      return { status: 'refused', error: remoteError({ type: 'ERROR', id: 0, code: result.code, message: text }) };
    }
    const mtime = new Date(result.mtimeMs);
    if (result.status === 'identical') return { status: 'identical', entry: { name: file.name, kind: 'file', size: file.data.length, mtime, digest, algorithm } };
    return { status: 'stored', result: { name: result.name ?? file.name, size: file.data.length, digest, algorithm, mtime, resumedFrom: 0 } };
  });
}
