import { FerryError, ProtocolError } from '../errors.js';
import type { Hasher } from '../io/digest.js';
import { createDigester, DIGEST_HIGH_WATER, InlineDigester, type Digester } from '../io/digester.js';
import { chunkHeader, encodeMessage, PutFlag, type WireEntry } from '../protocol/index.js';
import { waitForDrain } from '../transport/outbox.js';
import type { BodySource } from './body-source.js';
import { remoteError, type Connection } from './connection.js';
import { errorText, wireMtime } from './requests.js';
import type { PutOptions, TransferResult } from './types.js';

/** Above this size a put waits for the server's go-ahead before sending the body. */
export const AWAIT_READY_THRESHOLD = 1024 * 1024;

/**
 * A sized body the server refused mid-way must still be delivered whole (PROTOCOL.md §5.1);
 * up to this many bytes are sent as filler, beyond it the connection is closed instead.
 */
export const MAX_FILLER_BYTES = 64 * 1024 * 1024;
/** One zero buffer, written again and again as filler (never modified). */
const FILLER = Buffer.alloc(1024 * 1024);
/** PUT_END of an abandoned body: all zero, a digest no body has, so nothing is ever stored. */
const NO_DIGEST = Buffer.alloc(32);

/** A verified prefix of an interrupted upload: its length, digest and the hash to continue. */
export interface Resumable {
  offset: number;
  /** The server's digest of the bytes it holds, and the local hasher that matched it. */
  digest: Buffer;
  hasher: Hasher;
}

export interface UploadPlan {
  name: string;
  /** Declared size; undefined sends the body chunked. */
  size: number | undefined;
  options: PutOptions;
  resumable?: Resumable;
  /** The body from byte `from` on (0 unless the server continues a partial). */
  source(from: number): BodySource;
}

/** The server's verdict on the put, or the connection's failure. */
type Verdict = { error: FerryError } | { entry: WireEntry };

const STOPPED: unique symbol = Symbol('stopped');

/**
 * One PUT (PROTOCOL.md §5.1, §5.3). The call settles once the server has answered and the
 * body is over, so its id is reused only after its PUT_END left, and its source is closed.
 *
 * A refusal mid-body (QUOTA, NO_SPACE, TOO_LARGE, …) ends this upload only: the client stops
 * reading the source, ends a chunked body with its zero-length chunk or completes a sized one
 * with up to MAX_FILLER_BYTES of zeros, and sends PUT_END with an all-zero digest, which the
 * server drops. A local failure mid-body (the file shrank, the stream failed) ends the body the
 * same way: the server then refuses it (INTEGRITY), and the call rejects with the local error.
 * Only a remainder over the bound closes the connection.
 */
export async function upload(connection: Connection, plan: UploadPlan): Promise<TransferResult> {
  const { name, size, options, resumable } = plan;
  if (options.mtimeMs !== undefined && connection.version < 3) {
    throw new FerryError('UNSUPPORTED', `this server speaks protocol ${connection.version}: it cannot keep modification times (needs 3)`);
  }
  const awaitReady = size === undefined || size >= AWAIT_READY_THRESHOLD || resumable !== undefined;
  const flags =
    (options.overwrite ? PutFlag.OVERWRITE : 0) |
    (options.rename ? PutFlag.RENAME : 0) |
    (size === undefined ? PutFlag.CHUNKED : 0) |
    (awaitReady ? PutFlag.AWAIT_READY : 0) |
    (resumable ? PutFlag.RESUME : 0) |
    (options.mtimeMs !== undefined ? PutFlag.MTIME : 0);

  let verdict: Verdict | undefined;
  let go: ((start: boolean) => void) | undefined;
  let onVerdict: () => void = () => undefined;
  const verdictArrived = new Promise<void>((resolve) => (onVerdict = resolve));
  const decide = (value: Verdict): void => {
    if (verdict) return; // the first word stands: a refusal stays a refusal if the connection then dies
    verdict = value;
    go?.(false);
    onVerdict();
  };
  /** Resolves once the server has answered (a refusal) or the connection failed: stop sending. */
  const raceVerdict = <T>(work: Promise<T>): Promise<T | typeof STOPPED> => {
    work.catch(() => undefined); // abandoned when the verdict wins
    return Promise.race([work, verdictArrived.then((): typeof STOPPED => STOPPED)]);
  };

  let from = 0;
  let bodyBytes = 0;
  let localDigest: Buffer | undefined;
  /** A local reason the body was abandoned; the call rejects with it. */
  let abandoned: FerryError | undefined;

  const id = connection.register({
    message: (message) => {
      if (message.type === 'PUT_READY' && go) {
        const offset = message.offset;
        if (offset !== 0 && (!resumable || offset !== resumable.offset || !message.prefixDigest.equals(resumable.digest))) {
          // Another upload raced for the partial (PROTOCOL.md §5.3 step 3).
          connection.destroy(new FerryError('CONFLICT', `the server's partial of "${name}" changed while resuming: run the command again`));
          return;
        }
        from = offset;
        const start = go;
        go = undefined;
        start(true);
      } else if (message.type === 'ERROR' && !verdict) {
        decide({ error: remoteError(message) });
      } else if (message.type === 'PUT_OK' && localDigest && !verdict) {
        decide({ entry: message.entry });
      } else {
        throw new ProtocolError(`unexpected ${message.type} for a put`);
      }
    },
    fail: (error) => decide({ error }),
  });

  const socket = connection.socket;
  /** Writes `bytes`; false when the caller must `await waitForDrain(socket)` before more. */
  const write = (bytes: Buffer, written?: () => void): boolean =>
    socket.write(bytes, () => {
      connection.touch();
      written?.();
    });

  /** The body and PUT_END, with exclusive use of the socket. */
  const sendBody = async (): Promise<void> => {
    write(encodeMessage({ type: 'PUT', id, name, flags, size: size ?? 0, mtimeMs: options.mtimeMs === undefined ? undefined : wireMtime(options.mtimeMs) }));
    if (awaitReady) {
      if (verdict) return;
      const start = await new Promise<boolean>((resolve) => (go = resolve));
      if (!start) return; // refused before the body: nothing more is sent
    }
    if (from > 0) options.onResume?.(from);
    const bodyLength = size === undefined ? undefined : size - from;
    const hash: Digester = from > 0 ? new InlineDigester(resumable!.hasher) : createDigester(connection.algorithm, size);
    const source = plan.source(from);
    try {
      options.onProgress?.({ bytes: from, total: size });
      for (;;) {
        const chunk = await raceVerdict(source.next());
        if (chunk === STOPPED || chunk === undefined || verdict) break;
        if (bodyLength !== undefined && bodyBytes + chunk.length > bodyLength) {
          abandoned = new FerryError('LOCAL_IO', `the source is longer than the declared ${size} bytes`);
          break;
        }
        hash.update(chunk);
        if (size === undefined) write(chunkHeader(chunk.length));
        const more = write(chunk, () => source.recycle?.(chunk));
        bodyBytes += chunk.length;
        options.onProgress?.({ bytes: from + bodyBytes, total: size });
        if (!more) await waitForDrain(socket);
        // Hashing on another core may lag the socket: wait rather than queue without bound.
        if (hash.pending >= DIGEST_HIGH_WATER) await raceVerdict(new Promise<void>((resume) => hash.onCapacity(resume)));
      }
      if (!verdict && !abandoned && bodyLength !== undefined && bodyBytes !== bodyLength) {
        abandoned = new FerryError('LOCAL_IO', `the source gave ${from + bodyBytes} bytes, expected ${size}`);
      }
    } catch (error) {
      if (connection.failed || socket.destroyed) throw error; // the connection is gone: nothing to finish
      abandoned = error instanceof FerryError ? error : new FerryError('LOCAL_IO', errorText(error), { cause: error });
    } finally {
      await source.close();
      if (verdict || abandoned || connection.failed) hash.abort();
    }
    if (connection.failed) return; // nothing more can be sent; the verdict is the failure
    if (!verdict && !abandoned) {
      if (size === undefined) write(chunkHeader(0));
      const digest = await raceVerdict(hash.digest());
      if (digest !== STOPPED) {
        localDigest = digest;
        if (!write(encodeMessage({ type: 'PUT_END', id, digest }))) await waitForDrain(socket);
        return;
      }
      hash.abort(); // refused while the digest was computed: the body is complete already
    } else if (size === undefined) {
      write(chunkHeader(0)); // a chunked body may end early
    } else {
      const remaining = bodyLength! - bodyBytes;
      if (remaining > MAX_FILLER_BYTES) {
        const reason = verdict && 'error' in verdict ? `the server refused it (${verdict.error.code})` : 'it could not be completed';
        connection.destroy(
          new FerryError('CLOSED', `closed the connection: the upload of "${name}" stopped with ${remaining} bytes of its body unsent (${reason})`, { fatal: true }),
        );
        return;
      }
      for (let left = remaining; left > 0; left -= FILLER.length) {
        if (!write(left >= FILLER.length ? FILLER : FILLER.subarray(0, left))) await waitForDrain(socket);
      }
    }
    if (!write(encodeMessage({ type: 'PUT_END', id, digest: NO_DIGEST }))) await waitForDrain(socket);
  };

  try {
    await connection.outbox.enqueue(sendBody).catch((error: unknown) => {
      // A body that cannot be completed leaves the stream mid-frame: the connection is lost.
      connection.destroy(error instanceof FerryError ? error : new FerryError('CLOSED', `upload of "${name}" stopped: ${errorText(error)}`, { cause: error }));
    });
    await verdictArrived;
  } finally {
    connection.release(id);
  }
  if (abandoned) throw abandoned;
  const answer = verdict!;
  if ('error' in answer) throw answer.error;
  const entry = answer.entry;
  const { algorithm } = connection;
  if (entry.size !== from + bodyBytes || !entry.digest.equals(localDigest!)) {
    throw new FerryError('INTEGRITY', `server stored ${entry.size} bytes with a different ${algorithm} than was sent`);
  }
  return { name: entry.name, size: entry.size, digest: entry.digest.toString('hex'), algorithm, mtime: new Date(entry.mtimeMs), resumedFrom: from };
}
