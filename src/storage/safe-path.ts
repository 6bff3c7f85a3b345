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
export async function parentsAreRealFolders(root: string, name: string): Promise<boolean> {
  const components = name.split('/');
  let current = root;
  for (const component of components.slice(0, -1)) {
    current = path.join(current, component);
    let stats;
    try {
      stats = await fs.lstat(current);
    } catch (error) {
      if (isCode(error, 'ENOENT')) return false;
      throw error;
    }
    if (stats.isSymbolicLink()) throw new FerryError('BAD_NAME', `"${name}" passes through a symbolic link`);
    if (!stats.isDirectory()) throw new FerryError('CONFLICT', `"${name}": a parent of it is a file`);
  }
  return true;
}

/** Creates the parent folders of `name`, refusing symlinks and files in the way. */
export async function makeParents(root: string, name: string): Promise<void> {
  const components = name.split('/');
  let current = root;
  for (const component of components.slice(0, -1)) {
    current = path.join(current, component);
    try {
      await fs.mkdir(current);
    } catch (error) {
      if (!isCode(error, 'EEXIST')) throw error;
      const stats = await fs.lstat(current);
      if (stats.isSymbolicLink()) throw new FerryError('BAD_NAME', `"${name}" passes through a symbolic link`);
      if (!stats.isDirectory()) throw new FerryError('CONFLICT', `"${name}": a parent of it is a file`);
    }
  }
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

/** fsync a directory so a rename or unlink in it survives a crash. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
