import type { promises as fs } from 'node:fs';
import type { Socket } from 'node:net';
import { waitForDrain } from './outbox.js';

const READ_CHUNK = 1024 * 1024;

/**
 * Streams exactly `length` bytes of an open file, from `start`, to the socket. Reads are large
 * and the next read overlaps the socket's write of the previous one. Calls `onChunk` for
 * progress and hashing. Throws if the file turns out shorter than promised: the peer was told
 * a size, so the caller must then close the connection.
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
  // Buffers come back once the socket has written them: a transfer of any size churns
  // through a handful of buffers instead of leaving a gigabyte of garbage for the GC.
  const spare: Buffer[] = [];
  const readAt = async (position: number): Promise<Buffer> => {
    const size = Math.min(READ_CHUNK, end - position);
    const recycled = size === READ_CHUNK ? spare.pop() : undefined;
    const buffer = recycled ?? Buffer.allocUnsafeSlow(size);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) throw new Error(`file ended ${end - position} bytes early`);
    return bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
  };
  let position = start;
  // One read stays in flight while the previous chunk is written: disk and socket overlap.
  let next = position < end ? readAt(position) : undefined;
  try {
    while (next) {
      const chunk = await next;
      position += chunk.length;
      next = position < end ? readAt(position) : undefined;
      const waitForConsumer = onChunk?.(chunk);
      if (waitForConsumer) await waitForConsumer;
      const whole = chunk.length === READ_CHUNK ? chunk : undefined;
      const written = socket.write(chunk, () => {
        if (whole && spare.length < 4) spare.push(whole);
        onWritten?.();
      });
      if (!written) await waitForDrain(socket);
    }
  } finally {
    next?.catch(() => undefined); // abandoned on error: its failure is not news
  }
}
