import { createHash, type Hash } from 'node:crypto';
import type { promises as fs } from 'node:fs';

const READ_CHUNK = 1024 * 1024;

/**
 * Hashes the first `length` bytes of an open file and returns the hash still open, so the
 * caller can continue it with the rest of the file instead of reading the prefix twice.
 */
export async function hashPrefix(handle: fs.FileHandle, length: number): Promise<Hash> {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK, Math.max(length, 1)));
  let position = 0;
  while (position < length) {
    const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, length - position), position);
    if (bytesRead === 0) throw new Error(`file is shorter than ${length} bytes`);
    hash.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
  return hash;
}
