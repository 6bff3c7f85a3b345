import type { Socket } from 'node:net';
import { FerryError, WireErrorCode, type WireErrorName } from '../errors.js';
import {
  BATCH_FILES_OVERHEAD,
  batchItemWireSize,
  encodeMessage,
  MAX_CONTROL_PAYLOAD,
  MAX_GET_BATCH_FILE,
  shortMessage,
  type BatchItem,
  type MessageOf,
} from '../protocol/index.js';
import { readSmallFiles, type SmallOutcome } from '../storage/read-batch.js';
import { mapFsError } from '../storage/store.js';
import { writeAndWait } from '../transport/outbox.js';
import type { SessionIo } from './session-io.js';

/**
 * Files read per step: at most 16 × 60 KiB (under 1 MiB) held besides the frame, and on the
 * local store one synchronous stretch of about a millisecond for small files.
 */
const READ_GROUP = 16;

/** Refused before any frame of the reply left: the request gets an ERROR, the connection lives. */
class Refusal {
  constructor(readonly error: unknown) {}
}

/**
 * GET_BATCH (PROTOCOL.md §5.6, v6): many small files read whole and answered in BATCH_FILES
 * frames, in request order, each frame under the control-frame cap and sent once the socket
 * took the one before. The reply runs as one outbox task holding one slot of the server's
 * open-file allowance (it reads READ_GROUP files at a time), so a batch costs at most a
 * frame plus one group in memory. A refusal of the whole request (version,
 * BUSY) is an ERROR for its id; each file's own refusal is its item.
 */
export async function getBatch(io: SessionIo, message: MessageOf<'GET_BATCH'>, socket: Socket): Promise<void> {
  if (io.version < 6) {
    io.sendError(message.id, new FerryError('UNSUPPORTED', `GET_BATCH needs protocol 6; this connection speaks ${io.version}`));
    return;
  }
  try {
    await io.outbox.enqueue(() => reply(io, message, socket));
  } catch (error) {
    if (error instanceof Refusal && !io.closed) io.sendError(message.id, error.error);
  }
}

async function reply(io: SessionIo, message: MessageOf<'GET_BATCH'>, socket: Socket): Promise<void> {
  const { files, log } = io.ctx;
  let release: () => void;
  try {
    release = await io.working(files.acquire());
  } catch (error) {
    throw new Refusal(error);
  }
  let sent = 0;
  let bytes = 0;
  try {
    const { names } = message;
    let frame: BatchItem[] = [];
    let frameSize = BATCH_FILES_OVERHEAD;
    for (let start = 0; start < names.length; start += READ_GROUP) {
      const group = names.slice(start, start + READ_GROUP);
      const outcomes = await io.working(readSmallFiles(io.ctx.store, group, io.algorithm, MAX_GET_BATCH_FILE));
      for (const [k, outcome] of outcomes.entries()) {
        const item = itemOf(io, group[k]!, outcome);
        const size = batchItemWireSize(item);
        if (frameSize + size > MAX_CONTROL_PAYLOAD) {
          await writeAndWait(socket, encodeMessage({ type: 'BATCH_FILES', id: message.id, more: true, items: frame }), io.outbox.onWritten);
          frame = [];
          frameSize = BATCH_FILES_OVERHEAD;
        }
        frame.push(item);
        frameSize += size;
        if (item.status === 'file') {
          sent++;
          bytes += item.data.length;
        }
      }
    }
    await writeAndWait(socket, encodeMessage({ type: 'BATCH_FILES', id: message.id, more: false, items: frame }), io.outbox.onWritten);
  } finally {
    release();
  }
  log.info({ peer: io.peer, files: message.names.length, sent, bytes }, 'sent batch');
}

/** One file's item: its bytes, LARGE, or the refusal a GET of it would get. */
function itemOf(io: SessionIo, name: string, outcome: SmallOutcome): BatchItem {
  if (outcome.read !== undefined) {
    const { read } = outcome;
    return read.status === 'large' ? read : { status: 'file', mtimeMs: read.mtimeMs, digest: read.digest, data: read.data };
  }
  const mapped = mapFsError(outcome.error);
  if (mapped instanceof FerryError && mapped.code in WireErrorCode) {
    if (mapped.code === 'INTEGRITY') io.ctx.log.error({ peer: io.peer, name, err: mapped.message }, 'stored file does not match its digest record');
    return { status: 'refused', code: WireErrorCode[mapped.code as WireErrorName], message: shortMessage(mapped.message) };
  }
  io.ctx.log.error({ peer: io.peer, name, err: mapped }, 'internal error');
  return { status: 'refused', code: WireErrorCode.INTERNAL, message: 'internal server error' };
}
