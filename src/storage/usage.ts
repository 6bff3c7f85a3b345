import { promises as fs } from 'node:fs';
import path from 'node:path';
import { RESERVED_COMPONENT } from '../protocol/names.js';

/**
 * Bytes of every regular file under `root` except the server's own state (`.ferry/`): the
 * stored files, walked once when a store with a quota opens (the running total moves from
 * there). Symbolic links are not followed.
 */
export async function storedBytes(root: string): Promise<number> {
  let total = 0;
  const pending = [root];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    let entries;
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch {
      continue; // removed meanwhile
    }
    for (const entry of entries) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!(dir === root && entry.name === RESERVED_COMPONENT)) pending.push(full);
      } else if (entry.isFile()) {
        try {
          total += (await fs.lstat(full)).size;
        } catch {
          // removed meanwhile
        }
      }
    }
  }
  return total;
}

export interface FreeSpace {
  /** Bytes an unprivileged writer may still put on the file system. */
  bytes: number;
  /** Files (inodes) that may still be made, or Infinity where the file system has no such limit. */
  files: number;
}

export async function freeSpace(dir: string): Promise<FreeSpace> {
  const stats = await fs.statfs(dir);
  return { bytes: stats.bavail * stats.bsize, files: stats.files > 0 ? stats.ffree : Infinity };
}
