import type { promises as fs } from 'node:fs';
import type { Readable } from 'node:stream';
import { FerryError } from '../errors.js';
import { MAX_CHUNK_SIZE } from '../protocol/index.js';
import { errorText } from './requests.js';

/**
 * Where an upload's bytes come from. The upload pulls chunks with `next` (undefined at the end)
 * and calls `close` once it stops, whether the source is used up, failed, or the server refused
 * the upload: after `close` nothing is read any more and no read is in flight.
 */
export interface BodySource {
  next(): Promise<Buffer | undefined>;
  /** The socket has written `chunk`: its memory may be reused. */
  recycle?(chunk: Buffer): void;
  close(): Promise<void>;
}

const FILE_CHUNK = 1024 * 1024;
const STREAM_CHUNK = Math.min(256 * 1024, MAX_CHUNK_SIZE);

/**
 * `length` bytes of an open file from `start`. One read stays in flight while the previous
 * chunk is written, so disk and socket overlap; buffers come back through `recycle`, so a
 * transfer of any size churns through a handful of them.
 */
export function fileSource(handle: fs.FileHandle, start: number, length: number, file: string): BodySource {
  const end = start + length;
  const spare: Buffer[] = [];
  let position = start;
  let closed = false;
  const readAt = async (at: number): Promise<Buffer> => {
    const size = Math.min(FILE_CHUNK, end - at);
    const buffer = (size === FILE_CHUNK ? spare.pop() : undefined) ?? Buffer.allocUnsafeSlow(size);
    let bytesRead: number;
    try {
      ({ bytesRead } = await handle.read(buffer, 0, size, at));
    } catch (error) {
      throw new FerryError('LOCAL_IO', `cannot read ${file}: ${errorText(error)}`, { cause: error });
    }
    if (bytesRead === 0) throw new FerryError('LOCAL_IO', `${file} shrank while it was sent: ${end - at} bytes missing`);
    return bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
  };
  let ahead: Promise<Buffer> | undefined = position < end ? readAt(position) : undefined;
  return {
    async next() {
      if (closed || ahead === undefined) return undefined;
      const chunk = await ahead;
      position += chunk.length;
      ahead = position < end ? readAt(position) : undefined;
      return chunk;
    },
    recycle(chunk) {
      if (chunk.length === FILE_CHUNK && chunk.byteOffset === 0 && spare.length < 4) spare.push(chunk);
    },
    async close() {
      closed = true;
      const inFlight = ahead;
      ahead = undefined;
      await inFlight?.catch(() => undefined); // the caller closes the handle next
    },
  };
}

/** A Buffer, in slices (no copies), so a refusal can stop it between two slices. */
export function bufferSource(buffer: Buffer): BodySource {
  let position = 0;
  return {
    next() {
      if (position >= buffer.length) return Promise.resolve(undefined);
      const chunk = buffer.subarray(position, Math.min(buffer.length, position + FILE_CHUNK));
      position += chunk.length;
      return Promise.resolve(chunk);
    },
    close() {
      position = buffer.length;
      return Promise.resolve();
    },
  };
}

/**
 * A Readable, in chunks of at most 256 KiB. Closing it before its end destroys it (as a
 * for-await loop does when it stops early), so a stream such as stdin no longer holds the
 * process open.
 */
export function streamSource(stream: Readable): BodySource {
  const pieces = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  let piece: Buffer | undefined;
  let offset = 0;
  let ended = false;
  let pending: Promise<IteratorResult<Buffer | string>> | undefined;
  return {
    async next() {
      while (!ended && (piece === undefined || offset >= piece.length)) {
        pending = pieces.next();
        let result: IteratorResult<Buffer | string>;
        try {
          result = await pending;
        } catch (error) {
          ended = true;
          throw new FerryError('LOCAL_IO', `cannot read the source stream: ${errorText(error)}`, { cause: error });
        } finally {
          pending = undefined;
        }
        if (result.done) ended = true;
        else {
          piece = Buffer.isBuffer(result.value) ? result.value : Buffer.from(result.value);
          offset = 0;
        }
      }
      if (ended || piece === undefined) return undefined;
      const chunk = piece.subarray(offset, Math.min(piece.length, offset + STREAM_CHUNK));
      offset += chunk.length;
      return chunk;
    },
    async close() {
      if (!ended) {
        ended = true;
        stream.destroy();
      }
      await pending?.catch(() => undefined);
    },
  };
}
