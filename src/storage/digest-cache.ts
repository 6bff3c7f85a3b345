import { createHash } from 'node:crypto';
import { closeSync, constants, lstatSync, openSync, readSync, renameSync, rmSync, type Stats } from 'node:fs';
import type { promises as fs } from 'node:fs';
import type { DigestAlgorithm } from '../io/digest.js';
import { hashPrefix } from '../io/hash-prefix.js';
import { appendLog, compactLog, lineOf, loadLog, needsCompaction, nextCompactionCheck, parseRecord, recordDigest, recordText, type DigestRecord, type LoadedLog } from './digest-log.js';
import { IndexedLog } from './log-index.js';
import { isCode, type Folder, type SafeRoot } from './safe-path.js';

export type { DigestRecord } from './digest-log.js';

/**
 * Memory for folder logs kept parsed (estimated: see costOf); one larger folder is kept alone.
 * About 5 folders of 1,000 files: a transfer works through a folder or a few at a time, and
 * each byte held here costs the process two to three in garbage-collected heap.
 */
export const MAX_CACHED_BYTES = 1024 * 1024;
/**
 * What a parsed line costs besides its bytes in the log: the Map's entry and the two strings
 * of the leaf and the record (measured: 20,000 lines of 1 KiB files' records held 4 MB).
 */
const LINE_OVERHEAD = 100;
/** Folders whose next compaction check is remembered; past this the memory is simply dropped. */
const MAX_CHECKS = 4096;
/** Version 0.1–0.5's record file per stored file: 256 bytes; read so older stores keep their digests. */
const LEGACY_RECORD_LENGTH = 256;
const legacyBuffer = Buffer.alloc(2 * LEGACY_RECORD_LENGTH);

interface LogPlace {
  /** sha256 of the folder's name: the log is `meta/<first two hex>/<hex>.log`. */
  key: string;
  file: string;
  leaf: string;
}

/**
 * The digests of every stored file, kept beside the store in `.ferry/meta/` so listing and
 * downloading never rehash: a log per folder (digest-log.ts), read whole the first time one
 * of its files is asked about and kept in a bounded cache, which this process — the only
 * writer — updates as it appends. A record holds a digest per algorithm it was asked for (the
 * one the file was uploaded with, others computed on first demand) and names the inode, size
 * and mtime they were computed for; if the file no longer matches (changed by hand, or a crash
 * between the append and the rename of a commit), the record is ignored and the file is hashed
 * again. Logs are reached through the store's safe walk from the pinned `meta` folder.
 */
export class DigestCache {
  /** Parsed (or, when large, indexed) logs by folder key, least recently used first. */
  private readonly cache = new Map<string, LoadedLog | IndexedLog>();
  /** The estimated memory of the cached logs (costOf each, as it was when last counted). */
  private cachedCost = 0;
  private readonly costs = new Map<string, number>();
  /** Log size at which each folder's log is next looked at for compaction. */
  private readonly compactionChecks = new Map<string, number>();

  /** A log from this size on is indexed, not parsed (log-index.ts): a parsed line costs ~1.7× its bytes in heap. */
  private readonly indexFromBytes: number;

  constructor(
    private readonly root: SafeRoot,
    private readonly meta: Folder,
    private readonly maxCachedBytes = MAX_CACHED_BYTES,
  ) {
    this.indexFromBytes = Math.floor(maxCachedBytes / 2);
  }

  /** The estimated memory the cached logs hold: at most `maxCachedBytes`, unless one folder's log alone is larger. */
  get cachedBytes(): number {
    return this.cachedCost;
  }

  /** The folder whose log was placed last, its key and file: a listing or batch asks about one folder's files in a row (a SHA-256 each cost ~5% of a get -r's server CPU). */
  private lastFolder = { name: '', key: sha256Hex(''), file: `${sha256Hex('')}.log` };
  /** The key `cache` holds last (most recently used): asked again, it needs no reordering. */
  private newestKey: string | undefined;

  private place(name: string): LogPlace {
    const slash = name.lastIndexOf('/');
    const { key, file } = this.folderLog(slash < 0 ? '' : name.slice(0, slash));
    return { key, file, leaf: name.slice(slash + 1) };
  }

  /** The log key and file of a folder: its name's SHA-256, remembered for the folder asked about last. */
  private folderLog(folderName: string): { key: string; file: string } {
    if (folderName !== this.lastFolder.name) {
      const key = sha256Hex(folderName);
      this.lastFolder = { name: folderName, key, file: `${key}.log` };
    }
    return this.lastFolder;
  }

  /** The folder's log, parsed or indexed (from the cache when there); empty when it has none. */
  private logOf(at: LogPlace): LoadedLog | IndexedLog {
    const cached = this.cache.get(at.key);
    if (cached !== undefined) {
      if (at.key !== this.newestKey) {
        this.cache.delete(at.key); // re-inserted: most recently used
        this.cache.set(at.key, cached);
        this.newestKey = at.key;
      }
      return cached;
    }
    const folder = this.root.openExistingSync(this.meta, at.key.slice(0, 2));
    let log: LoadedLog | IndexedLog;
    try {
      log = folder === undefined ? { lines: new Map(), count: 0, bytes: 0 } : this.load(folder, at.file);
    } finally {
      void folder?.close();
    }
    this.remember(at.key, log);
    return log;
  }

  /** A log parsed, or indexed when large; compacted first if mostly dead lines. */
  private load(folder: Folder, file: string): LoadedLog | IndexedLog {
    const indexed = logSize(folder, file) >= this.indexFromBytes ? IndexedLog.open(folder, file) : undefined;
    if (indexed !== undefined) return indexed;
    const log = loadLog(folder, file);
    if (needsCompaction(log)) compactLog(folder, file, log);
    return log;
  }

  private remember(key: string, log: LoadedLog | IndexedLog): void {
    this.cache.set(key, log);
    this.newestKey = key;
    this.recount(key, log);
  }

  /** Counts the cached log `key` again (it was loaded, appended to or compacted), then evicts the least recently used logs over the budget. */
  private recount(key: string, log: LoadedLog | IndexedLog): void {
    if (!(log instanceof IndexedLog) && log.bytes >= this.indexFromBytes) {
      this.forget(key); // grown large by appends: indexed when next asked about
      return;
    }
    const cost = costOf(log);
    this.cachedCost += cost - (this.costs.get(key) ?? 0);
    this.costs.set(key, cost);
    for (const oldKey of [...this.cache.keys()]) {
      if (this.cachedCost <= this.maxCachedBytes) break;
      if (oldKey !== key) this.forget(oldKey);
    }
  }

  private forget(key: string): void {
    const log = this.cache.get(key);
    if (log instanceof IndexedLog) log.close();
    this.cache.delete(key);
    if (this.newestKey === key) this.newestKey = undefined;
    this.cachedCost -= this.costs.get(key) ?? 0;
    this.costs.delete(key);
  }

  /** Closes the logs held open (indexed ones); the cache stays usable and opens them again when asked. */
  close(): void {
    for (const key of [...this.cache.keys()]) this.forget(key);
  }

  /** The file's record; undefined when none is kept (or the file was removed). */
  read(name: string): DigestRecord | undefined {
    const at = this.place(name);
    const text = recordOf(this.logOf(at), at.leaf);
    if (text !== null) return text === undefined ? undefined : parseRecord(text);
    return this.readLegacy(name);
  }

  /**
   * Appends the file's record to its folder's log (synchronous: a line into the page cache
   * costs less than thread-pool round trips). Never fsynced: a lost record costs a rehash.
   */
  async write(name: string, record: DigestRecord): Promise<void> {
    const at = this.place(name);
    await this.append(at, [[at.leaf, record]]);
  }

  /**
   * Appends the records of several files of one folder (`folderName`, '' for the top) in one
   * write: a batch's commit costs its folder's log one open and one append, not one per file.
   */
  async writeFolder(folderName: string, records: ReadonlyArray<readonly [leaf: string, record: DigestRecord]>): Promise<void> {
    if (records.length === 0) return;
    await this.append({ ...this.folderLog(folderName), leaf: '' }, records);
  }

  /** Forgets the file's record (a line saying so), and its record file from older versions. */
  async remove(name: string): Promise<void> {
    const at = this.place(name);
    await this.append(at, [[at.leaf, undefined]]);
    this.removeLegacy(name);
  }

  /** Forgets a removed folder's log (its files' records); best effort, as a stale record never matches a new file's inode, size and mtime all at once by design. */
  removeFolder(folderName: string): void {
    const { key } = this.folderLog(folderName);
    this.forget(key);
    this.compactionChecks.delete(key);
    try {
      const folder = this.root.openExistingSync(this.meta, key.slice(0, 2));
      if (folder === undefined) return;
      try {
        rmSync(folder.entry(`${key}.log`), { force: true });
      } finally {
        void folder.close();
      }
    } catch {
      // left behind: its lines name files that no longer exist
    }
  }

  /**
   * Moves a folder's log to the folder's new name (a renamed folder: its files keep their
   * inodes, sizes and times, so their records still describe them), replacing any log the new
   * name had. Best effort, like the logs themselves: a log left behind costs a rehash.
   */
  async moveFolder(from: string, to: string): Promise<void> {
    const source = { ...this.folderLog(from) };
    const target = { ...this.folderLog(to) };
    for (const key of [source.key, target.key]) {
      this.forget(key);
      this.compactionChecks.delete(key);
    }
    try {
      const sourceSub = this.root.openExistingSync(this.meta, source.key.slice(0, 2));
      try {
        const targetSub = this.root.openExistingSync(this.meta, target.key.slice(0, 2)) ?? (await this.root.openFolder([target.key.slice(0, 2)], { from: this.meta, create: true }));
        if (targetSub === undefined) return;
        try {
          if (sourceSub === undefined) rmSync(targetSub.entry(target.file), { force: true });
          else renameSync(sourceSub.entry(source.file), targetSub.entry(target.file));
        } finally {
          await targetSub.close();
        }
      } finally {
        await sourceSub?.close();
      }
    } catch (error) {
      // No log there (never listed): the target's, if any, describes files no longer there.
      // Anything else leaves the logs as they were: the moved files are hashed again.
      if (isCode(error, 'ENOENT')) this.removeFolder(to);
    }
  }

  /** Appends a line per `[leaf, record]` (undefined: removed) to the log at `at` (its leaf unused). */
  private async append(at: LogPlace, records: ReadonlyArray<readonly [string, DigestRecord | undefined]>): Promise<void> {
    const sub = at.key.slice(0, 2);
    const folder = this.root.openExistingSync(this.meta, sub) ?? (await this.root.openFolder([sub], { from: this.meta, create: true }));
    if (folder === undefined) return;
    try {
      // Each record's text once: for the log's lines and for the cached log.
      const texts = records.map(([leaf, record]) => [leaf, record === undefined ? undefined : recordText(record)] as const);
      let text = '';
      for (const [leaf, recorded] of texts) text += lineOf(leaf, recorded);
      const size = appendLog(folder, at.file, text);
      const cached = this.cache.get(at.key);
      if (cached instanceof IndexedLog) {
        if (!cached.indexTo(size)) this.forget(at.key);
      } else if (cached !== undefined) {
        for (const [leaf, recorded] of texts) cached.lines.set(leaf, recorded);
        cached.count += records.length;
        cached.bytes = size;
      }
      // Rewrites a log that grew mostly of replaced or removed lines (checked at doubling sizes).
      if (size >= (this.compactionChecks.get(at.key) ?? nextCompactionCheck(0))) {
        // An uncached (or indexed) log is first only counted (its leaves, not its records' text).
        const parsed = cached instanceof IndexedLog ? undefined : cached;
        const log = parsed ?? loadLog(folder, at.file, false);
        if (needsCompaction(log)) {
          compactLog(folder, at.file, parsed ?? loadLog(folder, at.file));
          if (cached instanceof IndexedLog) this.forget(at.key); // its offsets were the old file's
        }
        if (this.compactionChecks.size >= MAX_CHECKS) this.compactionChecks.clear();
        this.compactionChecks.set(at.key, nextCompactionCheck(log.bytes));
      }
      if (cached !== undefined && this.cache.get(at.key) === cached) this.recount(at.key, cached);
    } finally {
      await folder.close();
    }
  }

  /** Where version 0.5 and older kept a file's record: `meta/<2 hex>/<sha256 of the name>`. */
  private legacyPlace(name: string): { sub: string; file: string } {
    const key = sha256Hex(name);
    return { sub: key.slice(0, 2), file: key };
  }

  private readLegacy(name: string): DigestRecord | undefined {
    const { sub, file } = this.legacyPlace(name);
    const folder = this.root.openExistingSync(this.meta, sub);
    if (folder === undefined) return undefined;
    try {
      const fd = openSync(folder.entry(file), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      try {
        const bytes = readSync(fd, legacyBuffer, 0, legacyBuffer.length, 0);
        return bytes < legacyBuffer.length ? parseRecord(legacyBuffer.toString('utf8', 0, bytes)) : undefined;
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      // Missing, a link, a folder or a FIFO planted in its place: no record (the file is hashed).
      if (isCode(error, 'ENOENT') || isCode(error, 'ELOOP') || isCode(error, 'EISDIR') || isCode(error, 'EAGAIN')) return undefined;
      throw error;
    } finally {
      void folder.close();
    }
  }

  private removeLegacy(name: string): void {
    const { sub, file } = this.legacyPlace(name);
    const folder = this.root.openExistingSync(this.meta, sub);
    if (folder === undefined) return;
    try {
      rmSync(folder.entry(file), { force: true });
    } finally {
      void folder.close();
    }
  }

  /** The digest in `algorithm` the record keeps for the file described by `stats`, if it still describes it. */
  knownDigest(name: string, stats: Stats, algorithm: DigestAlgorithm): Buffer | undefined {
    const at = this.place(name);
    const text = recordOf(this.logOf(at), at.leaf);
    if (typeof text === 'string') return recordDigest(text, { size: stats.size, mtimeMs: Math.trunc(stats.mtimeMs), ino: stats.ino }, algorithm);
    if (text === undefined) return undefined; // removed
    const record = this.readLegacy(name);
    return record && matches(record, stats) ? record.digests[algorithm] : undefined;
  }

  /**
   * The digest of an open file in `algorithm`, from the record if it still describes this very
   * file; otherwise computed and added to the record (keeping its other algorithms' digests).
   */
  async digestOf(name: string, handle: fs.FileHandle, stats: Stats, algorithm: DigestAlgorithm): Promise<Buffer> {
    const record = this.read(name);
    const current = record && matches(record, stats) ? record : undefined;
    const known = current?.digests[algorithm];
    if (known) return known;
    const digest = (await hashPrefix(handle, stats.size, algorithm)).peek();
    const digests = { ...current?.digests, [algorithm]: digest };
    await this.write(name, { digests, size: stats.size, mtimeMs: Math.trunc(stats.mtimeMs), ino: stats.ino });
    return digest;
  }
}

/**
 * A cached log's memory, estimated: an index's tables; a parsed log's bytes (the lines' strings
 * are slices of the text read, which they keep whole, dead lines too) and each live name's entry.
 */
function costOf(log: LoadedLog | IndexedLog): number {
  return log instanceof IndexedLog ? log.cost : log.bytes + LINE_OVERHEAD * log.lines.size;
}

/** The record text of `leaf`'s last line in `log`; undefined: removed; null: no line for it. */
function recordOf(log: LoadedLog | IndexedLog, leaf: string): string | undefined | null {
  if (log instanceof IndexedLog) return log.lookup(leaf);
  return log.lines.has(leaf) ? log.lines.get(leaf) : null;
}

/** The size of a folder's log (0 if missing or unreadable: loadLog then decides). */
function logSize(folder: Folder, file: string): number {
  try {
    return lstatSync(folder.entry(file)).size;
  } catch {
    return 0;
  }
}

export function matches(record: DigestRecord, stats: Stats): boolean {
  return record.size === stats.size && record.mtimeMs === Math.trunc(stats.mtimeMs) && record.ino === stats.ino;
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
