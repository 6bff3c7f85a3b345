import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { FerryError } from '../errors.js';

/**
 * Path resolution that never leaves the root: every folder on the way is lstat'ed and must
 * be a real directory (a symlink planted in the root is refused, not followed), and files are
 * opened with O_NOFOLLOW so the last component cannot be a link either.
 */
export function storedPath(root: string, name: string): string {
  return path.join(root, ...name.split('/'));
}

/** Checks each parent folder of `name` under root; returns false if one is missing. */
/**
 * Folders recently checked to be real directories (not links). Many files go into few
 * folders, so this spares an lstat per folder level per file. Entries expire quickly and are
 * dropped when ferry removes a folder, so a link planted by hand is noticed within a second.
 */
const knownFolders = new Map<string, number>();
const KNOWN_FOLDER_MS = 1000;

function isKnownFolder(dir: string): boolean {
  const expires = knownFolders.get(dir);
  if (expires === undefined) return false;
  if (expires > Date.now()) return true;
  knownFolders.delete(dir);
  return false;
}

function rememberFolder(dir: string): void {
  if (knownFolders.size > 10_000) knownFolders.clear();
  knownFolders.set(dir, Date.now() + KNOWN_FOLDER_MS);
}

/** Forgets every checked folder (call after removing folders). */
export function forgetFolders(): void {
  knownFolders.clear();
}

export async function parentsAreRealFolders(root: string, name: string): Promise<boolean> {
  const components = name.split('/');
  let current = root;
  for (const component of components.slice(0, -1)) {
    current = path.join(current, component);
    if (isKnownFolder(current)) continue;
    let stats;
    try {
      stats = await fs.lstat(current);
    } catch (error) {
      if (isCode(error, 'ENOENT')) return false;
      throw error;
    }
    if (stats.isSymbolicLink()) throw new FerryError('BAD_NAME', `"${name}" passes through a symbolic link`);
    if (!stats.isDirectory()) throw new FerryError('CONFLICT', `"${name}": a parent of it is a file`);
    rememberFolder(current);
  }
  return true;
}

/** Creates the parent folders of `name`, refusing symlinks and files in the way; returns those it made. */
export async function makeParents(root: string, name: string): Promise<string[]> {
  const components = name.split('/');
  const created: string[] = [];
  let current = root;
  for (const component of components.slice(0, -1)) {
    current = path.join(current, component);
    if (isKnownFolder(current)) continue;
    try {
      await fs.mkdir(current);
      created.push(current);
      rememberFolder(current);
    } catch (error) {
      if (!isCode(error, 'EEXIST')) throw error;
      const stats = await fs.lstat(current);
      if (stats.isSymbolicLink()) throw new FerryError('BAD_NAME', `"${name}" passes through a symbolic link`);
      if (!stats.isDirectory()) throw new FerryError('CONFLICT', `"${name}": a parent of it is a file`);
      rememberFolder(current);
    }
  }
  return created; // the folders made, outermost first (their parents need an fsync to last)
}

/** Opens a stored regular file for reading without following links anywhere on its path. */
export async function openStoredFile(root: string, name: string): Promise<fs.FileHandle> {
  if (!(await parentsAreRealFolders(root, name))) throw notFound(name);
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(storedPath(root, name), constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    if (isCode(error, 'ENOENT') || isCode(error, 'ELOOP')) throw notFound(name);
    if (isCode(error, 'EISDIR')) throw new FerryError('CONFLICT', `"${name}" is a folder`);
    throw error;
  }
  const stats = await handle.stat();
  if (!stats.isFile()) {
    await handle.close();
    throw stats.isDirectory() ? new FerryError('CONFLICT', `"${name}" is a folder`) : notFound(name);
  }
  return handle;
}

export function notFound(name: string): FerryError {
  return new FerryError('NOT_FOUND', `no file named "${name}"`);
}

export function isCode(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === code;
}

/**
 * fsync a directory so a rename or unlink in it survives a crash. Group commit: callers that
 * arrive while a sync of the same folder runs share the next one, so a burst of small files
 * into one folder costs a few directory fsyncs, not one per file.
 */
export function syncDirectory(dir: string): Promise<void> {
  let group = folderSyncs.get(dir);
  if (group?.next) return group.next;
  if (!group) {
    group = { running: undefined, next: undefined };
    folderSyncs.set(dir, group);
  }
  const state = group;
  const start = (): Promise<void> => {
    const run = syncDirectoryNow(dir).finally(() => {
      state.running = undefined;
      if (!state.next) folderSyncs.delete(dir);
    });
    state.running = run;
    return run;
  };
  if (!state.running) return start();
  // A sync is running but may predate our rename: queue exactly one more for everyone waiting.
  state.next = state.running.catch(() => undefined).then(() => {
    state.next = undefined;
    return start();
  });
  return state.next;
}

const folderSyncs = new Map<string, { running: Promise<void> | undefined; next: Promise<void> | undefined }>();

async function syncDirectoryNow(dir: string): Promise<void> {
  const handle = await fs.open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
