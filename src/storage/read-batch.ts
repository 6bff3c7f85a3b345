import { FerryError } from '../errors.js';
import { digestOf, type DigestAlgorithm } from '../io/digest.js';
import { closeFile, readRange, type FileFacts, type OpenedFile, type StoreBackend } from './backend.js';

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
    return verifiedRead(await readWhole(opened), opened, algorithm);
  } finally {
    await closeFile(opened).catch(() => undefined);
  }
}

/** One file's outcome in a batch read: the file (or `large`), or the refusal a GET of it would get. */
export type SmallOutcome = { read: SmallRead; error?: undefined } | { error: unknown; read?: undefined };

/** `data` as read, if it is all of the file and matches the digest the store holds for it; else INTEGRITY. */
export function verifiedRead(data: Buffer, facts: FileFacts, algorithm: DigestAlgorithm): SmallRead {
  if (data.length !== facts.size) throw new FerryError('INTEGRITY', 'changed size while read');
  // (short texts: a batch item carries at most 32 bytes of them; the server's log names the file)
  if (!digestOf(algorithm, data).equals(facts.digest)) throw new FerryError('INTEGRITY', 'bytes do not match the digest');
  return { status: 'file', size: facts.size, mtimeMs: facts.mtimeMs, digest: facts.digest, data };
}

/** Files of a batch read at once on a backend without a batched read (S3: each is a request). */
const EACH_WINDOW = 8;

/**
 * The small files `names`, one outcome each, in order: through the backend's batched read
 * where it has one (the local folder: synchronous reads), and file by file (a few at a time)
 * for the rest — another backend, or a file no digest record describes yet.
 */
export async function readSmallFiles(store: Pick<StoreBackend, 'openRead' | 'readSmallFiles'>, names: string[], algorithm: DigestAlgorithm, maxBytes: number): Promise<SmallOutcome[]> {
  const out: (SmallOutcome | undefined)[] = store.readSmallFiles ? await store.readSmallFiles(names, algorithm, maxBytes) : new Array<undefined>(names.length);
  const left = [...out.keys()].filter((i) => out[i] === undefined);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < left.length) {
      const i = left[next++]!;
      out[i] = await readSmallFile(store, names[i]!, algorithm, maxBytes).then(
        (read) => ({ read }),
        (error: unknown) => ({ error }),
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(EACH_WINDOW, left.length) }, lane));
  return out as SmallOutcome[];
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
