import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { waitForDrain } from './outbox.js';

/** Chunk size asked of a remote source (an S3 GET): as large as a local read's largest. */
export const STREAM_CHUNK = 256 * 1024;

/**
 * Sends exactly `length` bytes of `source` (a ranged remote read) to the socket. The source is
 * read only while the socket takes the bytes, so a peer that stops reading holds at most the
 * source's buffer and one chunk. Throws when the source ends short or runs long: the peer was
 * told a size, so the caller must then close the connection. The source is destroyed on every
 * path (its request is released).
 */
export async function sendStreamRange(socket: Socket, source: Readable, length: number, onWritten?: () => void): Promise<void> {
  let sent = 0;
  try {
    for await (const data of source) {
      const chunk = data as Buffer;
      sent += chunk.length;
      if (sent > length) throw new Error(`the stored file is longer than the ${length} bytes promised`);
      if (!socket.write(chunk, onWritten)) await waitForDrain(socket);
    }
    if (sent < length) throw new Error(`file ended ${length - sent} bytes early`);
  } finally {
    source.destroy();
  }
}
