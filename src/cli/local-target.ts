import { promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import type { DigestAlgorithm } from '../io/digest.js';
import { hashFile } from '../io/hash-prefix.js';
import { FerryError } from '../errors.js';

/**
 * Where a download goes on this machine, decided the way cp and scp decide: a regular file
 * (or a new one) is replaced atomically once verified; a FIFO or a device is written into,
 * in place; a symbolic link is followed to what it points at, and a dangling one is refused.
 */
export type LocalTarget =
  | { kind: 'file'; path: string; /** Mode of the file being replaced, kept like cp keeps it. */ mode: number | undefined; stats: Stats | undefined }
  | { kind: 'special'; path: string };

export async function localTarget(local: string): Promise<LocalTarget> {
  const link = await fs.lstat(local).catch(ignoreMissing);
  if (link === undefined) {
    await requireFolder(path.dirname(path.resolve(local)), local);
    return { kind: 'file', path: local, mode: undefined, stats: undefined };
  }
  if (link.isSymbolicLink()) {
    const real = await fs.realpath(local).catch(ignoreMissing);
    if (real === undefined) throw new FerryError('LOCAL_IO', `not writing through dangling symbolic link ${local}`);
    return localTarget(real);
  }
  if (link.isFile()) return { kind: 'file', path: local, mode: link.mode & 0o7777, stats: link };
  if (link.isDirectory()) throw new FerryError('LOCAL_IO', `${local} is a folder`);
  if (link.isSocket()) throw new FerryError('LOCAL_IO', `cannot write into ${local}: it is a socket`);
  return { kind: 'special', path: local };
}

/** A folder the command may write into: it exists, or only its last component is missing (then it is created). */
export async function prepareFolder(folder: string): Promise<void> {
  const stats = await fs.stat(folder).catch(ignoreMissing);
  if (stats?.isDirectory()) return;
  if (stats !== undefined) throw new FerryError('LOCAL_IO', `${folder} is not a folder`);
  await requireFolder(path.dirname(path.resolve(folder)), folder);
  await fs.mkdir(folder).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
}

async function requireFolder(folder: string, forPath: string): Promise<void> {
  const stats = await fs.stat(folder).catch(ignoreMissing);
  if (stats === undefined) throw new FerryError('LOCAL_IO', `cannot write ${forPath}: no such folder ${folder}`);
  if (!stats.isDirectory()) throw new FerryError('LOCAL_IO', `cannot write ${forPath}: ${folder} is not a folder`);
}

/** Lowercase hex digest of a local file's bytes. */
export async function digestOfFile(file: string, algorithm: DigestAlgorithm): Promise<string> {
  return (await hashFile(file, algorithm)).toString('hex');
}

function ignoreMissing(error: NodeJS.ErrnoException): undefined {
  if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
  throw error;
}
