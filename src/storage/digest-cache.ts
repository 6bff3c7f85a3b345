import { createHash } from 'node:crypto';
import { closeSync, constants, openSync, promises as fs, readSync, writeSync, type Stats } from 'node:fs';
import { isDigestAlgorithm, type DigestAlgorithm } from '../io/digest.js';
import { hashPrefix } from '../io/hash-prefix.js';
import { isCode, type Folder, type SafeRoot } from './safe-path.js';

/**
 * The digests of every stored file, kept beside the store in `.ferry/meta/` so listing and
 * downloading never rehash. A record holds a digest per algorithm it was asked for (the one
 * the file was uploaded with, others computed on first demand) and names the inode, size and
 * mtime they were computed for; if the file no longer matches (changed by hand, or a crash
 * between the two renames of a commit), the record is ignored and the file is hashed again.
 * Records are reached through the store's safe walk from the pinned `meta` folder, like
 * stored files.
 */
export interface DigestRecord {
  digests: Partial<Record<DigestAlgorithm, Buffer>>;
  size: number;
  mtimeMs: number;
  ino: number;
}

/**
 * Fixed record size: `algorithm:hex` per algorithm (7 + 1 + 64 each), three numbers of at most
 * 16 digits, separators. Version 0.1's records (128 bytes, a bare sha256 hex first) still parse.
 */
const RECORD_LENGTH = 256;
const HEX_DIGEST = /^[0-9a-f]{64}$/;
/** Read buffer for records (one at a time: reads are synchronous); a longer file is no record. */
const recordBuffer = Buffer.alloc(2 * RECORD_LENGTH);

export class DigestCache {
  constructor(
    private readonly root: SafeRoot,
    private readonly meta: Folder,
  ) {}

  private keyOf(name: string): string {
    return createHash('sha256').update(name).digest('hex');
  }

  /** Runs `task` with the record's folder (`meta/<2 hex>`) and file name; undefined if the folder is missing. */
  private async inRecordFolder<T>(name: string, create: boolean, task: (folder: Folder, file: string) => Promise<T>): Promise<T | undefined> {
    const key = this.keyOf(name);
    const folder = await this.root.openFolder([key.slice(0, 2)], { from: this.meta, create });
    if (folder === undefined) return undefined;
    try {
      return await task(folder, key);
    } finally {
      await folder.close();
    }
  }

  /**
   * The record, read with synchronous calls: 256 bytes from the page cache cost less than the
   * five thread-pool round trips of an async read (one per listed or downloaded file).
   */
  read(name: string): DigestRecord | undefined {
    const key = this.keyOf(name);
    const folder = this.root.openExistingSync(this.meta, key.slice(0, 2));
    if (folder === undefined) return undefined;
    try {
      const fd = openSync(folder.entry(key), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      try {
        const bytes = readSync(fd, recordBuffer, 0, recordBuffer.length, 0);
        return bytes < recordBuffer.length ? parseRecord(recordBuffer.toString('utf8', 0, bytes)) : undefined;
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

  /**
   * Writes the record in place, padded to a fixed length, without truncating or renaming:
   * ext4 flushes a file's data before a rename over another (or a truncate), which cost a
   * disk flush per upload here. A torn or lost record is harmless: it fails to parse, or
   * names another inode, and the file is hashed again. For the same reason it is never fsynced.
   */
  async write(name: string, record: DigestRecord): Promise<void> {
    const digests = Object.entries(record.digests).map(([algorithm, digest]) => `${algorithm}:${digest.toString('hex')}`);
    const text = `${digests.join(' ')} ${record.size} ${record.mtimeMs} ${record.ino}`.padEnd(RECORD_LENGTH - 1) + '\n';
    // Synchronous: 256 bytes into the page cache cost less than three thread-pool round trips.
    await this.inRecordFolder(name, true, async (folder, file) => {
      const fd = openSync(folder.entry(file), constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW, 0o644);
      try {
        writeSync(fd, text, 0, 'utf8');
      } finally {
        closeSync(fd);
      }
    });
  }

  async remove(name: string): Promise<void> {
    await this.inRecordFolder(name, false, (folder, file) => fs.rm(folder.entry(file), { force: true }));
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

/** `[algorithm:hex …] size mtime ino`; a bare hex first is a sha256 (version 0.1). */
function parseRecord(text: string): DigestRecord | undefined {
  const fields = text.trim().split(' ');
  if (fields.length < 4) return undefined;
  const [size, mtimeMs, ino] = fields.slice(-3).map(Number) as [number, number, number];
  const digests: DigestRecord['digests'] = {};
  for (const field of fields.slice(0, -3)) {
    const colon = field.indexOf(':');
    const algorithm = colon < 0 ? 'sha256' : field.slice(0, colon);
    const hex = field.slice(colon + 1);
    if (!isDigestAlgorithm(algorithm) || !HEX_DIGEST.test(hex)) return undefined;
    digests[algorithm] = Buffer.from(hex, 'hex');
  }
  return { digests, size, mtimeMs, ino };
}
