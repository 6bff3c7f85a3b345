import { createHash } from 'node:crypto';
import { constants, promises as fs, type Stats } from 'node:fs';
import { hashPrefix } from '../io/hash-prefix.js';
import { isCode, type Folder, type SafeRoot } from './safe-path.js';

/**
 * The sha256 of every stored file, kept beside the store in `.ferry/meta/` so listing and
 * downloading never rehash. A record names the inode, size and mtime it was computed for;
 * if the file no longer matches (changed by hand, or a crash between the two renames of a
 * commit), the record is ignored and the file is hashed again. Records are reached through
 * the store's safe walk from the pinned `meta` folder, like stored files.
 */
export interface DigestRecord {
  sha256: Buffer;
  size: number;
  mtimeMs: number;
  ino: number;
}

/** Fixed record size: hex digest (64), three numbers of at most 16 digits, separators. */
const RECORD_LENGTH = 128;

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

  async read(name: string): Promise<DigestRecord | undefined> {
    let text: string | undefined;
    try {
      text = await this.inRecordFolder(name, false, (folder, file) =>
        fs.readFile(folder.entry(file), { encoding: 'utf8', flag: constants.O_RDONLY | constants.O_NOFOLLOW }),
      );
    } catch (error) {
      if (isCode(error, 'ENOENT') || isCode(error, 'ELOOP')) return undefined;
      throw error;
    }
    if (text === undefined) return undefined;
    const [hex, size, mtimeMs, ino] = text.trim().split(' ');
    if (hex === undefined || !/^[0-9a-f]{64}$/.test(hex)) return undefined;
    return { sha256: Buffer.from(hex, 'hex'), size: Number(size), mtimeMs: Number(mtimeMs), ino: Number(ino) };
  }

  /**
   * Writes the record in place, padded to a fixed length, without truncating or renaming:
   * ext4 flushes a file's data before a rename over another (or a truncate), which cost a
   * disk flush per upload here. A torn or lost record is harmless: it fails to parse, or
   * names another inode, and the file is hashed again. For the same reason it is never fsynced.
   */
  async write(name: string, record: DigestRecord): Promise<void> {
    const text = `${record.sha256.toString('hex')} ${record.size} ${record.mtimeMs} ${record.ino}`.padEnd(RECORD_LENGTH - 1) + '\n';
    await this.inRecordFolder(name, true, async (folder, file) => {
      const handle = await fs.open(folder.entry(file), constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW, 0o644);
      try {
        await handle.write(text, 0, 'utf8');
      } finally {
        await handle.close();
      }
    });
  }

  async remove(name: string): Promise<void> {
    await this.inRecordFolder(name, false, (folder, file) => fs.rm(folder.entry(file), { force: true }));
  }

  /** The sha256 of an open file, from the record if it still describes this very file. */
  async digestOf(name: string, handle: fs.FileHandle, stats: Stats): Promise<Buffer> {
    const record = await this.read(name);
    if (record && matches(record, stats)) return record.sha256;
    const sha256 = await hashHandle(handle, stats.size);
    await this.write(name, { sha256, size: stats.size, mtimeMs: Math.trunc(stats.mtimeMs), ino: stats.ino });
    return sha256;
  }
}

export function matches(record: DigestRecord, stats: Stats): boolean {
  return record.size === stats.size && record.mtimeMs === Math.trunc(stats.mtimeMs) && record.ino === stats.ino;
}

async function hashHandle(handle: fs.FileHandle, size: number): Promise<Buffer> {
  return (await hashPrefix(handle, size)).digest();
}
