import type { promises as fs } from 'node:fs';
import type { Socket } from 'node:net';
import { waitForDrain } from './outbox.js';

/**
 * Chunk sizes: a transfer starts small and grows while the peer keeps up. Past 256 KiB larger
 * writes save only a few system calls per GiB, but every stalled peer would hold more memory.
 */
const MIN_CHUNK = 64 * 1024;
const MAX_CHUNK = 256 * 1024;
/** A drain slower than this means the peer reads slowly: the chunks shrink again. */
const SLOW_DRAIN_MS = 20;

/**
 * Streams exactly `length` bytes of an open file, from `start`, to the socket. The next read
 * overlaps the socket's write of the previous chunk. Chunks grow from 64 KiB to 256 KiB while
 * the socket drains promptly and shrink when it does not, and no read runs ahead while the
 * kernel takes nothing: a peer that stops reading holds at most two chunks of this process's
 * memory.
 * Calls `onChunk` for progress and hashing. Throws if the file turns out shorter than
 * promised: the peer was told a size, so the caller must then close the connection.
 */
export async function sendFileRange(
  socket: Socket,
  handle: fs.FileHandle,
  start: number,
  length: number,
  onChunk?: (chunk: Buffer) => Promise<void> | undefined,
  /** Told as each chunk reaches the kernel (the peer is taking the bytes). */
  onWritten?: () => void,
): Promise<void> {
  const end = start + length;
  let chunkSize = MIN_CHUNK;
  // Buffers come back once the socket has written them, kept per chunk size (64, 128 or
  // 256 KiB): a transfer of any size churns through a handful of buffers instead of leaving
  // a gigabyte of garbage for the GC.
  const spare = new Map<number, Buffer[]>();
  const readAt = async (position: number): Promise<{ chunk: Buffer; buffer: Buffer }> => {
    const size = Math.min(chunkSize, end - position);
    const buffer = spare.get(chunkSize)?.pop() ?? Buffer.allocUnsafeSlow(chunkSize);
    const { bytesRead } = await handle.read(buffer, 0, size, position);
    if (bytesRead === 0) throw new Error(`file ended ${end - position} bytes early`);
    return { chunk: buffer.subarray(0, bytesRead), buffer };
  };
  const recycle = (buffer: Buffer): void => {
    let pool = spare.get(buffer.length);
    if (pool === undefined) spare.set(buffer.length, (pool = []));
    if (pool.length < 4) pool.push(buffer);
  };
  let position = start;
  // One read stays in flight while the previous chunk is written: disk and socket overlap.
  let next = position < end ? readAt(position) : undefined;
  try {
    while (next) {
      const { chunk, buffer } = await next;
      position += chunk.length;
      const waitForConsumer = onChunk?.(chunk);
      if (waitForConsumer) await waitForConsumer;
      const written = socket.write(chunk, () => {
        recycle(buffer);
        onWritten?.();
      });
      // The kernel took none of it: the peer is not reading now; read ahead only if it is.
      const backedUp = !written && socket.writableLength >= chunk.length;
      if (backedUp) chunkSize = MIN_CHUNK;
      next = position < end && !backedUp ? readAt(position) : undefined;
      if (!written) {
        const waitStarted = performance.now();
        await waitForDrain(socket);
        const slow = performance.now() - waitStarted > SLOW_DRAIN_MS;
        chunkSize = slow ? Math.max(MIN_CHUNK, chunkSize / 2) : Math.min(MAX_CHUNK, chunkSize * 2);
      } else {
        chunkSize = Math.min(MAX_CHUNK, chunkSize * 2);
      }
      next ??= position < end ? readAt(position) : undefined;
    }
  } finally {
    next?.catch(() => undefined); // abandoned on error: its failure is not news
  }
}
