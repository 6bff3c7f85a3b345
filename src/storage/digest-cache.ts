import { createHash } from 'node:crypto';
import { closeSync, constants, openSync, readSync, rmSync, type Stats } from 'node:fs';
import type { promises as fs } from 'node:fs';
import type { DigestAlgorithm } from '../io/digest.js';
import { hashPrefix } from '../io/hash-prefix.js';
import { appendLog, compactLog, loadLog, logLine, needsCompaction, nextCompactionCheck, parseRecord, recordText, type DigestRecord, type LoadedLog } from './digest-log.js';
import { isCode, type Folder, type SafeRoot } from './safe-path.js';

export type { DigestRecord } from './digest-log.js';

/** Lines of folder logs kept parsed in memory (~250 bytes each); one larger folder is kept alone. */
const MAX_CACHED_LINES = 20_000;
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
  /** Parsed logs by folder key, least recently used first. */
  private readonly cache = new Map<string, LoadedLog>();
  private cachedLines = 0;
  /** Log size at which each folder's log is next looked at for compaction. */
  private readonly compactionChecks = new Map<string, number>();

  constructor(
    private readonly root: SafeRoot,
    private readonly meta: Folder,
  ) {}

  private place(name: string): LogPlace {
    const slash = name.lastIndexOf('/');
    const key = sha256Hex(slash < 0 ? '' : name.slice(0, slash));
    return { key, file: `${key}.log`, leaf: name.slice(slash + 1) };
  }

  /** The folder's log, parsed (from the cache when there); empty when it has none. */
  private logOf(at: LogPlace): LoadedLog {
    const cached = this.cache.get(at.key);
    if (cached !== undefined) {
      this.cache.delete(at.key); // re-inserted: most recently used
      this.cache.set(at.key, cached);
      return cached;
    }
    const folder = this.root.openExistingSync(this.meta, at.key.slice(0, 2));
    let log: LoadedLog;
    try {
      log = folder === undefined ? { lines: new Map(), count: 0, bytes: 0 } : loadLog(folder, at.file);
      if (folder !== undefined && needsCompaction(log)) compactLog(folder, at.file, log);
    } finally {
      void folder?.close();
    }
    this.remember(at.key, log);
    return log;
  }

  private remember(key: string, log: LoadedLog): void {
    this.cache.set(key, log);
    this.cachedLines += log.lines.size;
    for (const [oldKey, old] of this.cache) {
      if (this.cachedLines <= MAX_CACHED_LINES || oldKey === key) break;
      this.cache.delete(oldKey);
      this.cachedLines -= old.lines.size;
    }
  }

  /** The file's record; undefined when none is kept (or the file was removed). */
  read(name: string): DigestRecord | undefined {
    const at = this.place(name);
    const log = this.logOf(at);
    if (log.lines.has(at.leaf)) {
      const text = log.lines.get(at.leaf);
      return text === undefined ? undefined : parseRecord(text);
    }
    return this.readLegacy(name);
  }

  /**
   * Appends the file's record to its folder's log (synchronous: a line into the page cache
   * costs less than thread-pool round trips). Never fsynced: a lost record costs a rehash.
   */
  async write(name: string, record: DigestRecord): Promise<void> {
    await this.append(name, record);
  }

  /** Forgets the file's record (a line saying so), and its record file from older versions. */
  async remove(name: string): Promise<void> {
    await this.append(name, undefined);
    this.removeLegacy(name);
  }

  /** Forgets a removed folder's log (its files' records); best effort, as a stale record never matches a new file's inode, size and mtime all at once by design. */
  removeFolder(folderName: string): void {
    const key = sha256Hex(folderName);
    const cached = this.cache.get(key);
    if (cached !== undefined) {
      this.cache.delete(key);
      this.cachedLines -= cached.lines.size;
    }
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

  private async append(name: string, record: DigestRecord | undefined): Promise<void> {
    const at = this.place(name);
    const sub = at.key.slice(0, 2);
    const folder = this.root.openExistingSync(this.meta, sub) ?? (await this.root.openFolder([sub], { from: this.meta, create: true }));
    if (folder === undefined) return;
    try {
      const size = appendLog(folder, at.file, logLine(at.leaf, record));
      const cached = this.cache.get(at.key);
      if (cached !== undefined) {
        const had = cached.lines.has(at.leaf);
        cached.lines.set(at.leaf, record === undefined ? undefined : recordText(record));
        if (!had) this.cachedLines++;
        cached.count++;
        cached.bytes = size;
      }
      // Rewrites a log that grew mostly of replaced or removed lines (checked at doubling sizes).
      if (size >= (this.compactionChecks.get(at.key) ?? nextCompactionCheck(0))) {
        const log = cached ?? loadLog(folder, at.file);
        if (needsCompaction(log)) {
          const before = log.lines.size;
          compactLog(folder, at.file, log);
          if (cached !== undefined) this.cachedLines -= before - log.lines.size;
        }
        if (this.compactionChecks.size >= MAX_CHECKS) this.compactionChecks.clear();
        this.compactionChecks.set(at.key, nextCompactionCheck(log.bytes));
      }
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
    const record = this.read(name);
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

export function matches(record: DigestRecord, stats: Stats): boolean {
  return record.size === stats.size && record.mtimeMs === Math.trunc(stats.mtimeMs) && record.ino === stats.ino;
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
