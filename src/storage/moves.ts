import { promises as fs, lstatSync } from 'node:fs';
import { FerryError } from '../errors.js';
import { normalizePrefix } from '../protocol/names.js';
import { checkName } from './errors.js';
import { isCode, notFound, type Folder } from './safe-path.js';
import type { StoreParts } from './types.js';

/**
 * Renames and empty folders, for the HTTP door (MOVE, MKCOL). Both go through the same safe
 * walk as every other operation (each folder opened relative to its checked parent), and a
 * rename holds the name locks of both names, taken in a fixed order, so it is atomic with
 * commits and removals of either name within this process.
 */
export class Mover {
  constructor(private readonly parts: StoreParts) {}

  /**
   * Renames the file or folder `from` to `to`, making `to`'s missing folders. `to` must not
   * exist, unless `overwrite` and both are files (then it is replaced). A file keeps its
   * digest record (the inode is unchanged), and a renamed folder's logs move with it.
   */
  async rename(from: string, to: string, options: { overwrite?: boolean } = {}): Promise<{ kind: 'file' | 'folder' }> {
    from = normalizePrefix(from);
    to = normalizePrefix(to);
    checkName(from);
    checkName(to);
    this.parts.root.checkPathLength(to);
    if (from === to) throw new FerryError('CONFLICT', `"${from}" cannot be moved onto itself`);
    if (to.startsWith(`${from}/`)) throw new FerryError('CONFLICT', `"${from}" cannot be moved into itself`);
    const [first, second] = from < to ? [from, to] : [to, from];
    const { locks } = this.parts;
    return locks.with(first, () => locks.with(second, () => this.renameLocked(from, to, options.overwrite === true)));
  }

  private async renameLocked(from: string, to: string, overwrite: boolean): Promise<{ kind: 'file' | 'folder' }> {
    const { root, digests, ledger } = this.parts;
    const source = from.split('/');
    const sourceLeaf = source.pop()!;
    const sourceFolder = await root.openFolder(source, { name: from });
    if (sourceFolder === undefined) throw notFound(from);
    try {
      const seen = lstatSync(sourceFolder.entry(sourceLeaf), { throwIfNoEntry: false });
      if (seen === undefined || !(seen.isFile() || seen.isDirectory())) throw notFound(from);
      const kind = seen.isDirectory() ? 'folder' : 'file';
      const target = to.split('/');
      const targetLeaf = target.pop()!;
      const targetFolder = await root.openFolder(target, { create: true, name: to, onCreating: (parent, made) => this.creating(parent, made) });
      if (targetFolder === undefined) throw new FerryError('CONFLICT', `"${to}": its folder was removed meanwhile`);
      try {
        const existing = lstatSync(targetFolder.entry(targetLeaf), { throwIfNoEntry: false });
        if (existing !== undefined) {
          if (!overwrite) throw new FerryError('EXISTS', `"${to}" already exists`);
          if (existing.isDirectory() || kind === 'folder') throw new FerryError('CONFLICT', `"${to}" cannot be replaced: only a file replaces a file`);
        }
        const record = kind === 'file' ? digests.read(from) : undefined;
        if (record) await digests.write(to, record);
        try {
          await fs.rename(sourceFolder.entry(sourceLeaf), targetFolder.entry(targetLeaf));
        } catch (error) {
          if (isCode(error, 'ENOENT')) throw notFound(from);
          if (isCode(error, 'EISDIR') || isCode(error, 'ENOTDIR') || isCode(error, 'ENOTEMPTY') || isCode(error, 'EEXIST') || isCode(error, 'EINVAL')) {
            throw new FerryError('CONFLICT', `"${from}" cannot be moved to "${to}"`);
          }
          throw error;
        }
        if (existing?.isFile()) ledger.storedChanged(-existing.size);
        if (kind === 'file') await digests.remove(from);
        else await this.moveDigestLogs(targetFolder, targetLeaf, from, to);
        await this.sync(sourceFolder, targetFolder, target);
        return { kind };
      } finally {
        await targetFolder.close();
      }
    } finally {
      await sourceFolder.close();
    }
  }

  /**
   * Moves the digest logs of a renamed folder and of every folder in it to their new names,
   * so its files are not hashed again when next listed or read (a large file would keep a
   * listing silent for as long as its hashing takes). Walked through the moved folder itself.
   */
  private async moveDigestLogs(parent: Folder, leaf: string, from: string, to: string): Promise<void> {
    const { root, digests } = this.parts;
    const moved = await root.openFolder([leaf], { from: parent }).catch(() => undefined);
    if (moved === undefined) return;
    const walk = async (folder: Folder): Promise<void> => {
      await digests.moveFolder(from + folder.name.slice(to.length), folder.name);
      const dirents = await fs.readdir(folder.path, { withFileTypes: true }).catch(() => []);
      for (const dirent of dirents) {
        if (!dirent.isDirectory()) continue;
        const child = await root.openFolder([dirent.name], { from: folder }).catch(() => undefined);
        if (child === undefined) continue;
        try {
          await walk(child);
        } finally {
          await child.close();
        }
      }
    };
    try {
      await walk(moved);
    } finally {
      await moved.close();
    }
  }

  /** Makes the folder `name` and its missing parents; false when it already was a folder. */
  async makeFolder(name: string): Promise<boolean> {
    name = normalizePrefix(name);
    checkName(name);
    this.parts.root.checkPathLength(name);
    const components = name.split('/');
    return this.parts.locks.with(name, async () => {
      const existed = await this.parts.root.openFolder(components, { name });
      if (existed !== undefined) {
        await existed.close();
        return false;
      }
      const folder = await this.parts.root.openFolder(components, { create: true, name, onCreating: (parent, made) => this.creating(parent, made) });
      await folder?.close();
      if (this.parts.fsync) await this.parts.syncs.pathDurable(components);
      return true;
    });
  }

  private creating(parent: Folder, made: string): { made(): Promise<void>; notMade(): void } {
    if (!this.parts.fsync) return { made: async () => undefined, notMade: () => undefined };
    return this.parts.syncs.creating(made, parent);
  }

  private async sync(sourceFolder: Folder, targetFolder: Folder, target: string[]): Promise<void> {
    if (!this.parts.fsync) return;
    await this.parts.syncs.sync(targetFolder);
    if (sourceFolder.name !== targetFolder.name) await this.parts.syncs.sync(sourceFolder);
    await this.parts.syncs.pathDurable(target);
  }
}
