import { FerryError } from '../errors.js';
import { digestOf, type DigestAlgorithm } from '../io/digest.js';
import { closeFile, readRange, type OpenedFile, type StoreBackend } from './backend.js';

/** A small file read whole and checked against its digest record, or one too large to read so. */
export type SmallRead = { status: 'file'; size: number; mtimeMs: number; digest: Buffer; data: Buffer } | { status: 'large'; size: number };

/**
 * Reads the stored file `name` whole when it has at most `maxBytes` bytes (else reports its
 * size). The bytes are hashed and must match the digest the store serves for the file: a file
 * whose bytes no longer match its record is refused with INTEGRITY, never handed out as good.
 * Refusals are a GET's (NOT_FOUND, BAD_NAME, CONFLICT for a folder). Works on any backend.
 */
export async function readSmallFile(store: Pick<StoreBackend, 'openRead'>, name: string, algorithm: DigestAlgorithm, maxBytes: number): Promise<SmallRead> {
  const opened = await store.openRead(name, algorithm);
  try {
    if (opened.size > maxBytes) return { status: 'large', size: opened.size };
    const data = await readWhole(opened);
    if (data.length !== opened.size) throw new FerryError('INTEGRITY', `"${name}" changed size while it was read`);
    if (!digestOf(algorithm, data).equals(opened.digest)) {
      // (short: a batch item carries at most 32 bytes of text; the log names the file)
      throw new FerryError('INTEGRITY', 'bytes do not match the digest');
    }
    return { status: 'file', size: opened.size, mtimeMs: opened.mtimeMs, digest: opened.digest, data };
  } finally {
    await closeFile(opened).catch(() => undefined);
  }
}

/** The file's bytes (at most its size: a file grown meanwhile is caught by the size check). */
async function readWhole(opened: OpenedFile): Promise<Buffer> {
  if (opened.size === 0) return Buffer.alloc(0);
  if (opened.handle) {
    const data = Buffer.allocUnsafe(opened.size);
    let filled = 0;
    while (filled < data.length) {
      const { bytesRead } = await opened.handle.read(data, filled, data.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return data.subarray(0, filled);
  }
  const parts: Buffer[] = [];
  let total = 0;
  for await (const chunk of readRange(opened, 0, opened.size - 1, opened.size)) {
    const part = chunk as Buffer;
    total += part.length;
    if (total > opened.size) break;
    parts.push(part);
  }
  return Buffer.concat(parts);
}
