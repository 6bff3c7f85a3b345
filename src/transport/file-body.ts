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
  onChunk?: (chunk: Buffer) => void,
): Promise<void> {
  let position = start;
  const end = start + length;
  while (position < end) {
    const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK, end - position));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) throw new Error(`file ended ${end - position} bytes early`);
    const chunk = bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
    position += bytesRead;
    onChunk?.(chunk);
    if (!socket.write(chunk)) await waitForDrain(socket);
  }
}
