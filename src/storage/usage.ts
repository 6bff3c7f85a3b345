import { promises as fs } from 'node:fs';
import path from 'node:path';

/**
 * Bytes taken by every regular file under `root`, the server's own state included (uploads in
 * progress and kept partials count, so concurrent uploads cannot jointly overshoot a quota
 * unseen). Symbolic links are not followed. Used only when a quota is set.
 */
export async function usedBytes(root: string): Promise<number> {
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
      if (entry.isDirectory()) pending.push(full);
      else if (entry.isFile()) {
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

/** Bytes an unprivileged writer may still put on the file system holding `dir`. */
export async function freeBytes(dir: string): Promise<number> {
  const stats = await fs.statfs(dir);
  return stats.bavail * stats.bsize;
}
