import { promises as fs, statSync } from 'node:fs';
import path from 'node:path';

export interface LocalFile {
  /** Path on this machine. */
  path: string;
  /** Path relative to the tree's root, with / separators. */
  relative: string;
  size: number;
  /** Modification time, ms since the epoch. */
  mtimeMs: number;
}

/**
 * Every regular file under `root`, sorted. Symbolic links are skipped (never followed out of
 * the tree) and reported through `warn`, as are special files.
 */
export async function walkLocalTree(root: string, warn: (message: string) => void): Promise<LocalFile[]> {
  const out: LocalFile[] = [];
  for await (const file of streamLocalTree(root, warn)) out.push(file);
  return out;
}

/**
 * The walk as a stream: files are found as they are asked for, holding one folder's
 * names per level of depth, never the whole tree. A file that vanishes before it is reached
 * is skipped. The stat is synchronous: a few microseconds, less than a thread-pool round trip.
 */
export async function* streamLocalTree(root: string, warn: (message: string) => void): AsyncGenerator<LocalFile> {
  async function* walk(dir: string, relative: string): AsyncGenerator<LocalFile> {
    const entries = await fs.readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const full = path.join(dir, entry.name);
      const rel = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (entry.isSymbolicLink()) warn(`skipping symbolic link ${full}`);
      else if (entry.isDirectory()) yield* walk(full, rel);
      else if (entry.isFile()) {
        const stats = statSync(full, { throwIfNoEntry: false });
        if (stats?.isFile()) yield { path: full, relative: rel, size: stats.size, mtimeMs: stats.mtimeMs };
      } else warn(`skipping special file ${full}`);
    }
  }
  yield* walk(root, '');
}

/**
 * Where a stored name under `prefix` goes inside `destination`: the rest of the name as a
 * local path. Returns undefined for anything that would land outside `destination`.
 */
export function localPathFor(destination: string, prefix: string, name: string): string | undefined {
  const rest = prefix === '' ? name : name.startsWith(`${prefix}/`) ? name.slice(prefix.length + 1) : undefined;
  if (rest === undefined || rest === '') return undefined;
  const root = path.resolve(destination);
  const target = path.resolve(root, ...rest.split('/'));
  return target.startsWith(root + path.sep) ? target : undefined;
}
