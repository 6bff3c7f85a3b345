import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import type { Folder } from './safe-path.js';

/** Bytes read at a time while indexing. */
const INDEX_CHUNK = 64 * 1024;
/**
 * A looked-up line is read with the block that follows it, kept for the next lookups: a batch
 * of files uploaded together wrote its lines in name order, and listings ask in name order.
 */
const BLOCK = 4 * 1024; // also the longest line matched: ferry writes none longer (a leaf is ≤ 255 bytes, JSON-escaped ≤ 6×)
/** Offsets are kept as u32 (+1, 0 marking a free slot): a log past this is loaded whole instead. */
const MAX_INDEXED_BYTES = 0xffff_fff0;

/**
 * A large folder's digest log (digest-log.ts), indexed rather than parsed: a hash table of
 * (FNV-1a of the line's JSON leaf, the line's offset) in two typed arrays, the record read
 * back from the log when a name is asked about. A parsed log costs ~200 bytes of heap a
 * line (100,000 files in one folder: ~21 MB); this costs 8–16 bytes a line and a pread for
 * a block of lookups. Every line is indexed, replaced and removed ones too (a log is compacted when mostly
 * dead); the last line for a leaf wins, as when parsed. Holds the log open: `close` releases it.
 */
export class IndexedLog {
  private hashes: Uint32Array;
  /** Line offset + 1 per slot; 0: free. */
  private offsets: Uint32Array;
  private used = 0;
  /** How far the log is indexed: the start of its first unindexed (or torn) line. */
  bytes = 0;
  private readonly block = Buffer.allocUnsafe(BLOCK);
  /** The log's bytes from `blockStart` held in `block` (the log only grows, so they stay true). */
  private blockStart = 0;
  private blockLength = 0;
  private closed = false;

  private constructor(
    private readonly fd: number,
    expectedLines: number,
  ) {
    const slots = tableSize(expectedLines);
    this.hashes = new Uint32Array(slots);
    this.offsets = new Uint32Array(slots);
  }

  /** The log `file` of `folder`, indexed; undefined when it is missing, not a file or too large to index. */
  static open(folder: Folder, file: string): IndexedLog | undefined {
    let fd: number;
    try {
      fd = openSync(folder.entry(file), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch {
      return undefined;
    }
    try {
      const stats = fstatSync(fd);
      if (!stats.isFile() || stats.size > MAX_INDEXED_BYTES) {
        closeSync(fd);
        return undefined;
      }
      // ~140 bytes a line for a file with one digest
      const log = new IndexedLog(fd, Math.ceil(stats.size / 128));
      log.indexTo(stats.size);
      return log;
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  /** Memory the index holds. */
  get cost(): number {
    return this.hashes.byteLength + this.offsets.byteLength + BLOCK;
  }

  /**
   * Indexes the lines appended since (up to `size`, the log's size now); a torn last line
   * waits for its end. False, indexing nothing, once the log is too large for u32 offsets.
   */
  indexTo(size: number): boolean {
    if (size > MAX_INDEXED_BYTES) return false;
    const chunk = Buffer.allocUnsafe(Math.min(INDEX_CHUNK, Math.max(size - this.bytes, 1)));
    while (this.bytes < size) {
      const read = readSync(this.fd, chunk, 0, Math.min(chunk.length, size - this.bytes), this.bytes);
      if (read === 0) break;
      let start = 0;
      for (;;) {
        const end = chunk.indexOf(0x0a, start);
        if (end < 0 || end >= read) break;
        this.indexLine(chunk, start, end, this.bytes + start);
        start = end + 1;
      }
      if (start === 0) {
        // No newline in a whole chunk: not a line ferry wrote; skip to the next newline.
        const next = this.nextLineAfter(this.bytes + read, size);
        if (next === undefined) return true;
        this.bytes = next;
        continue;
      }
      this.bytes += start;
    }
    return true;
  }

  /** The record text of `leaf`'s last line; undefined: removed; null: the log has no line for it. */
  lookup(leaf: string): string | undefined | null {
    const key = Buffer.from(JSON.stringify(leaf), 'utf8');
    const hash = fnv1a(key, 0, key.length);
    const mask = this.hashes.length - 1;
    let best = -1;
    let bestText: string | undefined | null = null;
    // Every slot of this hash is probed: the last line for the leaf is the one at the largest offset.
    for (let slot = hash & mask; this.offsets[slot] !== 0; slot = (slot + 1) & mask) {
      if (this.hashes[slot] !== hash) continue;
      const offset = (this.offsets[slot] as number) - 1;
      if (offset <= best) continue;
      const text = this.recordAt(offset, key);
      if (text === null) continue;
      best = offset;
      bestText = text;
    }
    return bestText;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }

  private indexLine(chunk: Buffer, start: number, end: number, offset: number): void {
    const tab = chunk.indexOf(0x09, start);
    if (tab < 0 || tab > end) return;
    if (2 * (this.used + 1) > this.hashes.length) this.grow();
    this.insert(fnv1a(chunk, tab + 1, end), offset + 1);
  }

  private insert(hash: number, offsetPlusOne: number): void {
    const mask = this.hashes.length - 1;
    let slot = hash & mask;
    while (this.offsets[slot] !== 0) slot = (slot + 1) & mask;
    this.hashes[slot] = hash;
    this.offsets[slot] = offsetPlusOne;
    this.used++;
  }

  private grow(): void {
    const { hashes, offsets } = this;
    this.hashes = new Uint32Array(hashes.length * 2);
    this.offsets = new Uint32Array(offsets.length * 2);
    this.used = 0;
    for (let i = 0; i < offsets.length; i++) if (offsets[i] !== 0) this.insert(hashes[i] as number, offsets[i] as number);
  }

  /** The record text of the line at `offset` if its leaf is `key` (undefined: a removal line); null otherwise. */
  private recordAt(offset: number, key: Buffer): string | undefined | null {
    let start = offset - this.blockStart;
    let end = start >= 0 && start < this.blockLength ? this.block.indexOf(0x0a, start) : -1;
    if (end < 0 || end >= this.blockLength) {
      this.blockStart = offset;
      this.blockLength = 0; // until read: a failed read must not leave stale bytes trusted
      this.blockLength = readSync(this.fd, this.block, 0, BLOCK, offset);
      start = 0;
      end = this.block.indexOf(0x0a);
      if (end < 0 || end >= this.blockLength) return null;
    }
    const { block } = this;
    const tab = block.indexOf(0x09, start);
    if (tab < 0 || tab > end || end - tab - 1 !== key.length || block.compare(key, 0, key.length, tab + 1, end) !== 0) return null;
    const text = block.toString('latin1', start, tab);
    return text === '-' ? undefined : text;
  }

  /** The offset just past the first newline at or after `from` (before `size`), if any. */
  private nextLineAfter(from: number, size: number): number | undefined {
    const chunk = Buffer.allocUnsafe(INDEX_CHUNK);
    for (let at = from; at < size; ) {
      const read = readSync(this.fd, chunk, 0, Math.min(chunk.length, size - at), at);
      if (read === 0) return undefined;
      const end = chunk.indexOf(0x0a);
      if (end >= 0 && end < read) return at + end + 1;
      at += read;
    }
    return undefined;
  }
}

/** A power of two at least twice the lines expected (open addressing stays under half full). */
function tableSize(lines: number): number {
  let size = 1024;
  while (size < 2 * lines) size *= 2;
  return size;
}

/** 32-bit FNV-1a of bytes `start` to `end`. */
function fnv1a(bytes: Buffer, start: number, end: number): number {
  let hash = 0x811c9dc5;
  for (let i = start; i < end; i++) hash = Math.imul(hash ^ (bytes[i] as number), 0x01000193);
  return hash >>> 0;
}
