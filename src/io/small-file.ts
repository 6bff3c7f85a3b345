import { closeSync, constants, openSync, readFileSync, readSync } from 'node:fs';

/**
 * A small file's bytes when its size is known from a walk: an open, one read of one byte more
 * than expected, and a close (readFileSync adds an fstat and a second read to find the end,
 * ~30% of a 1 KiB file's cost). A file that shrank since gives what it holds now; one that
 * grew is read whole.
 */
export function readSmallFile(file: string, expectedSize: number): Buffer {
  const fd = openSync(file, constants.O_RDONLY);
  try {
    const buffer = Buffer.allocUnsafe(expectedSize + 1);
    const read = readSync(fd, buffer, 0, buffer.length, 0);
    if (read <= expectedSize) return buffer.subarray(0, read);
    return readFileSync(fd); // grew: from the descriptor's position, still 0 (the read above was positioned)
  } finally {
    closeSync(fd);
  }
}
