import { createHash } from 'node:crypto';
import { promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import { hashPrefix } from '../transport/hash-prefix.js';
import { isCode } from './safe-path.js';

/**
 * The sha256 of every stored file, kept beside the store in `.ferry/meta/` so listing and
 * downloading never rehash. A record names the inode, size and mtime it was computed for;
 * if the file no longer matches (changed by hand, or a crash between the two renames of a
 * commit), the record is ignored and the file is hashed again.
 */
export interface DigestRecord {
  sha256: Buffer;
  size: number;
  mtimeMs: number;
  ino: number;
}

export class DigestCache {
  constructor(private readonly metaDir: string) {}

  private recordPath(name: string): string {
    const key = createHash('sha256').update(name).digest('hex');
    return path.join(this.metaDir, key.slice(0, 2), key);
  }

  async read(name: string): Promise<DigestRecord | undefined> {
    let text: string;
    try {
      text = await fs.readFile(this.recordPath(name), 'utf8');
    } catch (error) {
      if (isCode(error, 'ENOENT')) return undefined;
      throw error;
    }
    const [hex, size, mtimeMs, ino] = text.trim().split(' ');
    if (hex === undefined || !/^[0-9a-f]{64}$/.test(hex)) return undefined;
    return { sha256: Buffer.from(hex, 'hex'), size: Number(size), mtimeMs: Number(mtimeMs), ino: Number(ino) };
  }

  /** Writes the record atomically (temp + rename); `sync` makes it durable before returning. */
  async write(name: string, record: DigestRecord, sync: boolean): Promise<void> {
    const target = this.recordPath(name);
    await fs.mkdir(path.dirname(target), { recursive: true });
    const temp = `${target}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    const text = `${record.sha256.toString('hex')} ${record.size} ${record.mtimeMs} ${record.ino}\n`;
    const handle = await fs.open(temp, 'w');
    try {
      await handle.writeFile(text);
      if (sync) await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temp, target);
  }

  async remove(name: string): Promise<void> {
    await fs.rm(this.recordPath(name), { force: true });
  }

  /** The sha256 of an open file, from the record if it still describes this very file. */
  async digestOf(name: string, handle: fs.FileHandle, stats: Stats): Promise<Buffer> {
    const record = await this.read(name);
    if (record && matches(record, stats)) return record.sha256;
    const sha256 = await hashHandle(handle, stats.size);
    await this.write(name, { sha256, size: stats.size, mtimeMs: Math.trunc(stats.mtimeMs), ino: stats.ino }, false);
    return sha256;
  }
}

export function matches(record: DigestRecord, stats: Stats): boolean {
  return record.size === stats.size && record.mtimeMs === Math.trunc(stats.mtimeMs) && record.ino === stats.ino;
}

async function hashHandle(handle: fs.FileHandle, size: number): Promise<Buffer> {
  return (await hashPrefix(handle, size)).digest();
}
