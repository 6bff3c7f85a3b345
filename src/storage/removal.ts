import { promises as fs } from 'node:fs';
import { FerryError } from '../errors.js';
import { normalizePrefix } from '../protocol/names.js';
import { checkName } from './errors.js';
import { isCode, notFound, type Folder } from './safe-path.js';
import type { StoreParts } from './types.js';

/** Files unlinked at once by a folder removal. */
const REMOVE_BATCH = 64;

/** Removal of files and folders; folders exist only to hold files, so emptied ones go too. */
export class Remover {
  constructor(private readonly parts: StoreParts) {}

  async remove(name: string): Promise<void> {
    checkName(name);
    const { root, locks, digests, ledger } = this.parts;
    await locks.with(name, async () => {
      await root.inParent(
        name,
        {},
        async (folder, leaf) => {
          const target = folder.entry(leaf);
          let stats;
          try {
            stats = await fs.lstat(target);
          } catch (error) {
            if (isCode(error, 'ENOENT')) throw notFound(name);
            throw error;
          }
          if (stats.isDirectory()) throw new FerryError('CONFLICT', `"${name}" is a folder (remove it recursively)`);
          if (!stats.isFile()) throw notFound(name);
          await fs.unlink(target);
          ledger.storedChanged(-stats.size);
        },
        () => {
          throw notFound(name);
        },
      );
      await digests.remove(name);
      await this.pruneEmptyParents(name);
    });
  }

  /**
   * Removes the folder `prefix` with everything in it; returns how many files went. Walks the
   * folder itself (no digests are read) and never follows a link: links inside are removed
   * as entries, like any other.
   */
  async removeTree(prefix: string): Promise<number> {
    const folderName = normalizePrefix(prefix);
    checkName(folderName);
    const { root, syncs } = this.parts;
    const missing = (): never => {
      throw new FerryError('NOT_FOUND', `no folder named "${folderName}"`);
    };
    const components = folderName.split('/');
    const leaf = components.pop()!;
    const count = await root.inParent(
      folderName,
      {},
      async (parent) => {
        const top = await root.openFolder([leaf], { from: parent, name: folderName }).catch((error: unknown) => {
          if (error instanceof FerryError && error.code === 'CONFLICT') throw new FerryError('CONFLICT', `"${folderName}" is a file, not a folder`);
          throw error;
        });
        if (top === undefined) return missing();
        let removed: number;
        try {
          removed = await this.removeContents(top);
        } finally {
          await top.close();
        }
        await fs.rmdir(parent.entry(leaf));
        this.parts.digests.removeFolder(folderName);
        if (this.parts.fsync) await syncs.sync(parent);
        return removed;
      },
      missing,
    );
    await this.pruneEmptyParents(folderName);
    return count;
  }

  /** Empties `folder` (entries reached through it, never by path); returns the files removed. */
  private async removeContents(folder: Folder): Promise<number> {
    const { root, locks, digests, ledger } = this.parts;
    const dirents = await fs.readdir(folder.path, { withFileTypes: true });
    let count = 0;
    for (const dirent of dirents) {
      if (!dirent.isDirectory()) continue;
      const child = await root.openFolder([dirent.name], { from: folder });
      if (child === undefined) continue;
      try {
        count += await this.removeContents(child);
      } finally {
        await child.close();
      }
      await fs.rmdir(folder.entry(dirent.name));
      digests.removeFolder(child.name);
    }
    // Unlinks wait on the journal, not the CPU: run a batch at a time.
    const files = dirents.filter((d) => !d.isDirectory());
    for (let start = 0; start < files.length; start += REMOVE_BATCH) {
      await Promise.all(
        files.slice(start, start + REMOVE_BATCH).map((dirent) => {
          const name = `${folder.name}/${dirent.name}`;
          return locks.with(name, async () => {
            const target = folder.entry(dirent.name);
            const stats = await fs.lstat(target).catch(() => undefined);
            // Gone, or made a folder since the listing: (the final rmdir then reports it).
            if (stats === undefined || stats.isDirectory()) return;
            await fs.rm(target, { force: true });
            if (stats.isFile()) {
              count++;
              ledger.storedChanged(-stats.size);
            }
            await digests.remove(name);
          });
        }),
      );
    }
    return count;
  }

  /** Folders exist only to hold files: drop the ones a removal left empty. */
  private async pruneEmptyParents(name: string): Promise<void> {
    const components = name.split('/');
    for (let depth = components.length - 1; depth > 0; depth--) {
      const parent = await this.parts.root.openFolder(components.slice(0, depth - 1)).catch(() => undefined);
      if (parent === undefined) return;
      try {
        await fs.rmdir(parent.entry(components[depth - 1]!));
        this.parts.digests.removeFolder(components.slice(0, depth).join('/'));
      } catch {
        return; // not empty (or gone): stop climbing
      } finally {
        await parent.close();
      }
    }
  }
}
