import { createHash, randomBytes } from 'node:crypto';
import { RESERVED_COMPONENT } from '../../protocol/names.js';
import type { DigestAlgorithm } from '../../io/digest.js';
import type { ObjectHead } from './bucket.js';

/** Longest key S3 takes, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

/**
 * How a store's names map to keys under its prefix P:
 * - `P<name>`: a file. Its metadata holds size, modification time and both digests; the data
 *   is the object's body, or for a file sent in parts the blob named by `ferry-blob`.
 * - `P<folder>/`: an empty folder made on purpose (MKCOL); other folders exist through their files.
 * - `P.ferry/blobs/<random>`: the data of a file sent in parts, immutable once written.
 * - `P.ferry/partials/<hash of name and size>`: an interrupted upload kept for resuming.
 * Names never contain a `.ferry` component, so the internal keys never clash with a file.
 */
export class Keys {
  readonly internal: string;
  readonly blobs: string;
  readonly partials: string;

  constructor(readonly prefix: string) {
    this.internal = `${prefix}${RESERVED_COMPONENT}/`;
    this.blobs = `${this.internal}blobs/`;
    this.partials = `${this.internal}partials/`;
  }

  file(name: string): string {
    return this.prefix + name;
  }

  /** The key prefix of everything in folder `name` ('' for the top). */
  folder(name: string): string {
    return name === '' ? this.prefix : `${this.prefix}${name}/`;
  }

  nameOf(key: string): string {
    return key.slice(this.prefix.length);
  }

  newBlob(): string {
    return `${this.blobs}${randomBytes(16).toString('hex')}`;
  }

  partial(name: string, size: number): string {
    return this.partials + createHash('sha256').update(`${size}\0${name}`).digest('hex');
  }

  fits(name: string): boolean {
    return Buffer.byteLength(this.folder(name)) <= MAX_KEY_BYTES;
  }
}

/** What a file's object metadata records. */
export interface FileMeta {
  size: number;
  mtimeMs: number;
  digests: Partial<Record<DigestAlgorithm, Buffer>>;
  /** The key of the data, when not the file's own object. */
  blob?: string;
}

const META_SIZE = 'ferry-size';
const META_MTIME = 'ferry-mtime';
const META_BLOB = 'ferry-blob';
const metaDigest = (algorithm: DigestAlgorithm): string => `ferry-${algorithm}`;

export function encodeMeta(meta: FileMeta): Record<string, string> {
  const out: Record<string, string> = { [META_SIZE]: String(meta.size), [META_MTIME]: String(meta.mtimeMs) };
  for (const [algorithm, digest] of Object.entries(meta.digests)) out[metaDigest(algorithm as DigestAlgorithm)] = digest.toString('hex');
  if (meta.blob !== undefined) out[META_BLOB] = meta.blob;
  return out;
}

/** The file an object holds, or undefined for an object ferry did not store (never served: it was not verified). */
export function decodeMeta(head: ObjectHead): FileMeta | undefined {
  const m = head.metadata;
  const size = Number(m[META_SIZE]);
  const mtimeMs = Number(m[META_MTIME]);
  if (!Number.isSafeInteger(size) || !Number.isFinite(mtimeMs)) return undefined;
  const digests: Partial<Record<DigestAlgorithm, Buffer>> = {};
  for (const algorithm of ['sha256', 'blake3'] as const) {
    const hex = m[metaDigest(algorithm)];
    if (hex !== undefined && /^[0-9a-f]{64}$/.test(hex)) digests[algorithm] = Buffer.from(hex, 'hex');
  }
  if (Object.keys(digests).length === 0) return undefined;
  const blob = m[META_BLOB];
  if (blob === undefined && head.size !== size) return undefined;
  return { size, mtimeMs, digests, ...(blob !== undefined ? { blob } : {}) };
}
