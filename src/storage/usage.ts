import { promises as fs, statfsSync, type StatsFs } from 'node:fs';
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
  return spaceOf(await fs.statfs(dir));
}

/** freeSpace on this thread: for the batch path, which does its other small calls synchronously too (a thread-pool round trip cost more than the call). */
export function freeSpaceSync(dir: string): FreeSpace {
  return spaceOf(statfsSync(dir));
}

function spaceOf(stats: StatsFs): FreeSpace {
  return { bytes: stats.bavail * stats.bsize, files: stats.files > 0 ? stats.ffree : Infinity };
}
