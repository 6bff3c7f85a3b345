import type { FileMeta } from './keys.js';

/** Files whose metadata a store remembers (~0.4 KB each). */
const MAX_ENTRIES = 4096;

interface Entry {
  etag: string;
  /** Undefined when learned from our own PutObject (its answer has no time): the first listing's is taken. */
  lastModified: number | undefined;
  meta: FileMeta;
}

/**
 * The metadata of small files this server wrote or read lately, by key, so that a listing
 * (ListObjectsV2 gives each key's size, ETag and time, not its metadata) needs no HEAD for
 * them. An entry answers only while the listing shows the same ETag, size and time: a file
 * replaced through any server has another ETag, or for the same bytes another time. Only a
 * file's own object is kept, never a manifest (every manifest has the empty body's ETag).
 * The least recently used entries go first.
 */
export class MetaCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly max = MAX_ENTRIES) {}

  remember(key: string, etag: string, lastModified: number | undefined, meta: FileMeta): void {
    if (meta.blob !== undefined || etag === '') return;
    this.entries.delete(key);
    this.entries.set(key, { etag, lastModified, meta });
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
  }

  /** The metadata of `key` as listed (its ETag, size and time), if known. */
  lookup(key: string, listed: { etag: string; size: number; lastModified: number }): FileMeta | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.etag !== listed.etag || entry.meta.size !== listed.size || (entry.lastModified !== undefined && !sameSecond(entry.lastModified, listed.lastModified))) {
      this.entries.delete(key);
      return undefined;
    }
    entry.lastModified = listed.lastModified;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.meta;
  }

  forget(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}

/** A HEAD's Last-Modified has whole seconds; some stores' listings have milliseconds. */
function sameSecond(a: number, b: number): boolean {
  return Math.floor(a / 1000) === Math.floor(b / 1000);
}
