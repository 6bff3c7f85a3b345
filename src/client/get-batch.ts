import { FerryError, ProtocolError, WireErrorCode } from '../errors.js';
import { digestOf } from '../io/digest.js';
import {
  GET_BATCH_OVERHEAD,
  getBatchNameWireSize,
  MAX_CONTROL_PAYLOAD,
  MAX_GET_BATCH_FILE,
  MAX_GET_BATCH_NAMES,
  printableName,
  type BatchItem,
} from '../protocol/index.js';
import { remoteError, type Connection } from './connection.js';
import { checkedName, request } from './requests.js';
import type { TransferResult } from './types.js';

/**
 * What became of one file of a `getBatch`, in the order asked: its bytes (already verified
 * against the digest the server sent), `large` (over the batch limit: fetch it with `get`),
 * or refused on its own (NOT_FOUND, CONFLICT for a folder, INTEGRITY, …).
 */
export type BatchGetResult =
  | { status: 'file'; data: Buffer; result: TransferResult }
  | { status: 'large'; name: string; size: number }
  | { status: 'refused'; name: string; error: FerryError };

/** Largest file a batch reply carries (larger ones come back `large`). */
export const BATCH_GET_MAX_FILE = MAX_GET_BATCH_FILE;

/** Packs names into one GET_BATCH: `fits` says whether another still goes in (frame cap, MAX_GET_BATCH_NAMES). */
export class GetBatchBuilder {
  readonly names: string[] = [];
  private bytes = GET_BATCH_OVERHEAD;

  constructor(private readonly maxNames = MAX_GET_BATCH_NAMES) {}

  fits(name: string): boolean {
    return this.names.length < Math.min(this.maxNames, MAX_GET_BATCH_NAMES) && this.bytes + getBatchNameWireSize(name.normalize('NFC')) <= MAX_CONTROL_PAYLOAD;
  }

  add(name: string): void {
    if (!this.fits(name)) throw new RangeError('the batch is full');
    this.names.push(name);
    this.bytes += getBatchNameWireSize(name.normalize('NFC'));
  }
}

/**
 * One GET_BATCH (PROTOCOL.md §5.6, v6): the files named, each answered on its own. Every
 * file's bytes are checked against the digest that came with them before the call returns
 * them; a mismatch is that file's INTEGRITY refusal. The call rejects only for the whole
 * request (UNSUPPORTED on an older server, BUSY, the connection, a malformed reply).
 */
export async function getBatch(connection: Connection, names: string[]): Promise<BatchGetResult[]> {
  if (connection.version < 6) {
    throw new FerryError('UNSUPPORTED', `this server speaks protocol ${connection.version}: it cannot send batches (needs 6)`);
  }
  // A bad name is refused here, on its own: it is not sent, and the others still are.
  const local = new Map<number, FerryError>();
  const builder = new GetBatchBuilder();
  for (const [i, name] of names.entries()) {
    try {
      builder.add(checkedName(name));
    } catch (error) {
      if (!(error instanceof FerryError)) throw error;
      local.set(i, error);
    }
  }
  const wanted = builder.names;
  if (wanted.length === 0) return names.map((name, i) => ({ status: 'refused', name, error: local.get(i)! }));
  const items: BatchItem[] = [];
  await request<void>(connection, (id) => ({ type: 'GET_BATCH', id, names: wanted }), (message, done) => {
    if (message.type !== 'BATCH_FILES') return false;
    // Every frame but the last carries something, and never more than was asked: a server
    // cannot keep a batch going for ever.
    if (message.more && message.items.length === 0) throw new ProtocolError('an empty BATCH_FILES frame that is not the last');
    if (items.length + message.items.length > wanted.length) throw new ProtocolError(`more than the ${wanted.length} files asked for in a batch`);
    for (const item of message.items) {
      if (item.status === 'large' && item.size <= MAX_GET_BATCH_FILE) throw new ProtocolError(`a file of ${item.size} bytes reported too large for a batch`);
    }
    items.push(...message.items);
    if (message.more) return true;
    if (items.length !== wanted.length) throw new ProtocolError(`${items.length} files for a batch of ${wanted.length}`);
    done(undefined);
    return true;
  });
  const { algorithm } = connection;
  const answered = items.map((item, i): BatchGetResult => {
    const name = wanted[i]!;
    if (item.status === 'large') return { status: 'large', name, size: item.size };
    if (item.status === 'refused') return { status: 'refused', name, error: refusal(name, item.code, item.message) };
    if (!digestOf(algorithm, item.data).equals(item.digest)) {
      const error = new FerryError('INTEGRITY', `${algorithm} of the ${item.data.length} bytes received does not match the server's: the download is corrupt`);
      return { status: 'refused', name, error };
    }
    const result = { name, size: item.data.length, digest: item.digest.toString('hex'), algorithm, mtime: new Date(item.mtimeMs), resumedFrom: 0 };
    return { status: 'file', data: item.data, result };
  });
  if (local.size === 0) return answered;
  let next = 0;
  return names.map((name, i) => {
    const refused = local.get(i);
    return refused ? { status: 'refused', name, error: refused } : answered[next++]!;
  });
}

/** A file's refusal; the server's text is cut short (§5.6), so the usual ones are worded here as a GET's would be. */
function refusal(name: string, code: number, text: string): FerryError {
  const shown = printableName(name);
  const worded =
    code === WireErrorCode.NOT_FOUND
      ? `no file named "${shown}"`
      : code === WireErrorCode.CONFLICT
        ? `"${shown}" is a folder`
        : code === WireErrorCode.INTEGRITY
          ? `"${shown}" on the server does not match its digest record: not sent`
          : text;
  return remoteError({ type: 'ERROR', id: 0, code, message: worded });
}
