import { FerryError, WireErrorCode, type WireErrorName } from '../errors.js';
import { BatchFlag, shortMessage, type BatchResult, type MessageOf } from '../protocol/index.js';
import type { BatchOutcome } from '../storage/store.js';
import type { SessionIo } from './session-io.js';

/** PUT_BATCH flag bits this server knows; others refuse the whole batch with UNSUPPORTED. */
const KNOWN_BATCH_FLAGS = BatchFlag.OVERWRITE | BatchFlag.RENAME | BatchFlag.MTIME | BatchFlag.SKIP_IDENTICAL;

/**
 * File bytes of PUT_BATCHes one connection may have in progress (decoded, held until stored
 * and answered) before the server stops reading it; it reads on once they drop below. Without
 * it the bound was the in-flight request limit: 64 batches of 64 KiB, copies and all ~8 MiB per
 * connection. 1 MiB is 16 full batches: more than the thread pool's syncs can overlap.
 */
export const MAX_BATCH_BYTES_IN_FLIGHT = 1024 * 1024;

/** Batch bytes in progress per connection. */
const inFlight = new WeakMap<SessionIo, { bytes: number; paused: boolean }>();

/** Counts `bytes` of a batch as in progress on `io` until the returned release (stops reading it past the budget). */
function holdBatchBytes(io: SessionIo, bytes: number): () => void {
  let state = inFlight.get(io);
  if (state === undefined) inFlight.set(io, (state = { bytes: 0, paused: false }));
  const held = state;
  held.bytes += bytes;
  if (held.bytes >= MAX_BATCH_BYTES_IN_FLIGHT && !held.paused) {
    held.paused = true;
    io.pause('batch-bytes');
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    held.bytes -= bytes;
    if (held.bytes < MAX_BATCH_BYTES_IN_FLIGHT && held.paused) {
      held.paused = false;
      io.resume('batch-bytes');
    }
  };
}

/**
 * The open-file slots a batch takes: one per temporary the store may hold open for it (64
 * with fsync), but at most an eighth of the budget (at least 2), so a small `--max-open-files`
 * still runs several transfers beside a batch; the store then syncs fewer files at a time.
 */
export function batchSlots(wanted: number, budget: number): number {
  return Math.min(wanted, budget, Math.max(2, Math.floor(budget / 8)));
}

/**
 * PUT_BATCH (PROTOCOL.md §5.5, v5): many small files in one frame, one BATCH_RESULTS with a
 * result per file once every stored one is durable. The batch holds as many slots of the
 * server's open-file allowance as the store may hold temporaries open for it. A refusal of
 * the whole request (version, flags, BUSY) is an ERROR for its id.
 */
export async function putBatch(io: SessionIo, message: MessageOf<'PUT_BATCH'>): Promise<void> {
  if (io.version < 5) throw new FerryError('UNSUPPORTED', `PUT_BATCH needs protocol 5; this connection speaks ${io.version}`);
  const unknown = message.flags & ~KNOWN_BATCH_FLAGS;
  if (unknown !== 0) throw new FerryError('UNSUPPORTED', `unknown PUT_BATCH flag bits 0x${unknown.toString(16)}`);
  // Counted at once (dispatch is synchronous): the decoder reports no further request once paused.
  let bytes = 0;
  for (const file of message.files) bytes += file.data.length;
  const releaseBytes = holdBatchBytes(io, bytes);
  try {
    await storeAndAnswer(io, message);
  } finally {
    releaseBytes();
  }
}

async function storeAndAnswer(io: SessionIo, message: MessageOf<'PUT_BATCH'>): Promise<void> {
  const { store, files, log } = io.ctx;
  const slots = batchSlots(store.batchOpenFiles, files.limit);
  const release = await io.working(files.acquire(slots));
  let outcomes: BatchOutcome[];
  try {
    outcomes = await io.working(
      store.storeBatch(
        message.files.map((file) => ({ name: file.name, data: file.data, digest: file.digest, mtimeMs: message.flags & BatchFlag.MTIME ? file.mtimeMs : undefined })),
        {
          overwrite: (message.flags & BatchFlag.OVERWRITE) !== 0,
          rename: (message.flags & BatchFlag.RENAME) !== 0,
          skipIdentical: (message.flags & BatchFlag.SKIP_IDENTICAL) !== 0,
          algorithm: io.algorithm,
          openFiles: slots,
        },
      ),
    );
  } finally {
    release();
  }
  let stored = 0;
  let bytes = 0;
  const results = outcomes.map((outcome, i): BatchResult => {
    const requested = message.files[i]!.name;
    if (outcome.status === 'identical') return { status: 'identical', mtimeMs: outcome.entry.mtimeMs };
    if (outcome.status === 'stored') {
      stored++;
      bytes += outcome.entry.size;
      return { status: 'stored', name: outcome.entry.name === requested ? undefined : outcome.entry.name, mtimeMs: outcome.entry.mtimeMs };
    }
    const error = outcome.error;
    if (error instanceof FerryError && error.code in WireErrorCode) {
      return { status: 'refused', code: WireErrorCode[error.code as WireErrorName], message: shortMessage(error.message) };
    }
    log.error({ peer: io.peer, name: requested, err: error }, 'internal error');
    return { status: 'refused', code: WireErrorCode.INTERNAL, message: 'internal server error' };
  });
  log.info({ peer: io.peer, files: message.files.length, stored, bytes }, 'stored batch');
  io.send({ type: 'BATCH_RESULTS', id: message.id, results });
}
