import { opendirSync, statSync, type Dirent } from 'node:fs';
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
 * Every regular file under `root`, sorted within each folder (see MAX_HELD_NAMES). Symbolic links are skipped (never followed out of
 * the tree) and reported through `warn`, as are special files.
 */
export async function walkLocalTree(root: string, warn: (message: string) => void): Promise<LocalFile[]> {
  const out: LocalFile[] = [];
  for await (const file of streamLocalTree(root, warn)) out.push(file);
  return out;
}

/**
 * Names of one folder the walk holds at once. A folder up to this size is walked in name order;
 * a larger one (a flat folder of 100,000 files held 10 MB of names) in groups of this many,
 * each in name order, the groups in the order the file system lists them.
 */
export const MAX_HELD_NAMES = 4096;

/**
 * The walk as a stream: files are found as they are asked for, holding at most `maxHeldNames`
 * names of a folder per level of depth, never the whole tree. A file that vanishes before it
 * is reached is skipped. The stat is synchronous: a few microseconds, less than a thread-pool
 * round trip.
 */
export async function* streamLocalTree(root: string, warn: (message: string) => void, maxHeldNames = MAX_HELD_NAMES): AsyncGenerator<LocalFile> {
  async function* walk(dir: string, relative: string): AsyncGenerator<LocalFile> {
    for await (const entries of folderEntries(dir, maxHeldNames)) {
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
  }
  yield* walk(root, '');
}

/**
 * The entries of `dir` in groups of at most `maxHeld`, each sorted by name: all of a folder
 * that has no more (one group), else as the file system lists them. The folder stays open
 * while its groups are walked (one descriptor per level of depth), and is closed when the
 * walk ends or is stopped.
 */
export async function* folderEntries(dir: string, maxHeld: number): AsyncGenerator<Dirent[]> {
  // Read synchronously, as the stats are: `for await` over a Dir cost a promise per entry.
  const folder = opendirSync(dir, { bufferSize: Math.min(maxHeld, 256) });
  try {
    let group: Dirent[] = [];
    for (let entry = folder.readSync(); entry !== null; entry = folder.readSync()) {
      group.push(entry);
      if (group.length < maxHeld) continue;
      yield group.sort(byName);
      group = [];
    }
    if (group.length > 0) yield group.sort(byName);
  } finally {
    folder.closeSync();
  }
}

function byName(a: Dirent, b: Dirent): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
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
