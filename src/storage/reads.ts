import { closeSync, constants, fstatSync, lstatSync, opendirSync, openSync, promises as fs, readSync, type Dir, type Dirent, type Stats } from 'node:fs';
import { FerryError } from '../errors.js';
import type { DigestAlgorithm } from '../io/digest.js';
import { nameProblem, normalizePrefix } from '../protocol/names.js';
import { checkName } from './errors.js';
import { isCode, notFound, type Folder } from './safe-path.js';
import type { LocalFile } from './backend.js';
import type { ListOptions, StoredEntry, StoreParts } from './types.js';
import { verifiedRead, type SmallOutcome, type SmallRead } from './read-batch.js';
import { folderStamp, NameWindows, SmallestAfter } from './list-page.js';

const NO_DIGEST = Buffer.alloc(32);
/** A listed file that vanished (or became something else) between readdir and its lstat. */
const GONE = Symbol('gone');
/** Files listed with synchronous calls between two turns of the event loop (~2–5 ms). */
const YIELD_EVERY = 128;
/** Entries per batch of `listStream`. */
const LIST_BATCH = 1000;
/** O_NONBLOCK: opening a FIFO planted in the root must not hang; no effect on regular files. */
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** A name of a folder a paged listing shows: its leaf, and whether it is a folder. */
interface ListedLeaf {
  leaf: string;
  folder: boolean;
}

/** A ListedLeaf with its full name. */
interface ListedName extends ListedLeaf {
  name: string;
}

/** Reading: stat, open for download, and listings. */
export class Reader {
  private syncListed = 0;
  /** Names read for a listing's next pages, by folder. */
  private readonly windows = new NameWindows<ListedLeaf>();

  constructor(private readonly parts: StoreParts) {}

  /** Opens a file for download; the handle keeps reading this version even if it is replaced. */
  async openRead(name: string, algorithm: DigestAlgorithm): Promise<LocalFile> {
    checkName(name);
    return this.parts.root.inParent(
      name,
      {},
      (folder, leaf) => this.openIn(folder, leaf, name, algorithm),
      () => {
        throw notFound(name);
      },
    );
  }

  /**
   * Small files of a batch (GET_BATCH): the folder of each run of names in the same folder is
   * reached once (the safe walk), then each file is read synchronously — open, fstat, read, its
   * digest record, close — with no thread-pool round trip. A file that no record describes yet
   * is left `undefined`, for `openRead` (which hashes and records it).
   */
  async readSmall(names: string[], algorithm: DigestAlgorithm, maxBytes: number): Promise<(SmallOutcome | undefined)[]> {
    const out = new Array<SmallOutcome | undefined>(names.length);
    let i = 0;
    while (i < names.length) {
      const name = names[i]!;
      try {
        checkName(name);
      } catch (error) {
        out[i++] = { error };
        continue;
      }
      const parent = name.slice(0, name.lastIndexOf('/') + 1);
      let end = i + 1;
      while (end < names.length && names[end]!.lastIndexOf('/') === parent.length - 1 && names[end]!.startsWith(parent) && nameProblem(names[end]!) === undefined) end++;
      const run = names.slice(i, end);
      const start = i;
      try {
        await this.parts.root.inParent(
          name,
          {},
          async (folder) => {
            for (const [k, each] of run.entries()) out[start + k] = this.readSmallIn(folder, each.slice(parent.length), each, algorithm, maxBytes);
          },
          () => {
            for (const [k, each] of run.entries()) out[start + k] = { error: notFound(each) };
          },
        );
      } catch (error) {
        for (const k of run.keys()) out[start + k] ??= { error };
      }
      i = end;
    }
    return out;
  }

  private readSmallIn(folder: Folder, leaf: string, name: string, algorithm: DigestAlgorithm, maxBytes: number): SmallOutcome | undefined {
    let fd: number;
    try {
      fd = openSync(folder.entry(leaf), READ_FLAGS);
    } catch (error) {
      return { error: openFailure(error, name) };
    }
    try {
      const stats = fstatSync(fd);
      if (!stats.isFile()) return { error: notAFile(stats, name) };
      if (stats.size > maxBytes) return { read: { status: 'large', size: stats.size } };
      const recorded = this.parts.digests.knownDigest(name, stats, algorithm);
      if (recorded === undefined) return undefined;
      const data = Buffer.allocUnsafe(stats.size);
      let filled = 0;
      while (filled < data.length) {
        const n = readSync(fd, data, filled, data.length - filled, filled);
        if (n === 0) break;
        filled += n;
      }
      const read: SmallRead = verifiedRead(data.subarray(0, filled), { size: stats.size, mtimeMs: Math.trunc(stats.mtimeMs), digest: recorded }, algorithm);
      return { read };
    } catch (error) {
      return { error };
    } finally {
      closeSync(fd);
    }
  }

  async stat(name: string, algorithm: DigestAlgorithm): Promise<StoredEntry> {
    const opened = await this.openRead(name, algorithm);
    await opened.handle.close();
    return { name, kind: 'file', size: opened.size, mtimeMs: opened.mtimeMs, digest: opened.digest };
  }

  /** Opens the regular file `leaf` of `folder` (stored as `name`) without following a link. */
  private async openIn(folder: Folder, leaf: string, name: string, algorithm: DigestAlgorithm): Promise<LocalFile> {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(folder.entry(leaf), READ_FLAGS);
    } catch (error) {
      throw openFailure(error, name);
    }
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) throw notAFile(stats, name);
      const digest = await this.parts.digests.digestOf(name, handle, stats, algorithm);
      return { handle, size: stats.size, mtimeMs: Math.trunc(stats.mtimeMs), digest };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** Whether anything (file, folder, link) has this name; a link or file on the way is an error. */
  async exists(name: string): Promise<boolean> {
    return this.parts.root.inParent(
      name,
      {},
      // lstatSync with throwIfNoEntry: on the hot path of every upload, a missing name is the
      // normal case, and building an ENOENT error for it cost more than the lookup itself.
      async (folder, leaf) => lstatSync(folder.entry(leaf), { throwIfNoEntry: false }) !== undefined,
      () => false,
    );
  }

  async list(prefix: string, recursive: boolean, options: ListOptions = {}): Promise<StoredEntry[]> {
    const entries: StoredEntry[] = [];
    for await (const batch of this.listStream(prefix, recursive, options)) entries.push(...batch);
    return entries;
  }

  /** What a listing of `prefix` starts from: its folder (opened: the caller closes it), or the file it names alone, or nothing. */
  private async listed(prefix: string, options: ListOptions): Promise<Folder | StoredEntry[]> {
    const folderName = normalizePrefix(prefix);
    const algorithm = options.algorithm ?? 'sha256';
    const components = folderName === '' ? [] : folderName.split('/');
    if (folderName !== '') checkName(folderName);
    const missing = (): StoredEntry[] => {
      if (options.missing === 'error') throw new FerryError('NOT_FOUND', `no folder named "${folderName}"`);
      return [];
    };
    if (components.length === 0) return this.parts.root.top.view();
    const leaf = components.pop()!;
    return this.parts.root.inParent(
      folderName,
      {},
      async (parent): Promise<Folder | StoredEntry[]> => {
        const folder = await this.parts.root.openFolder([leaf], { from: parent, name: folderName }).catch(async (error: unknown) => {
          if (!(error instanceof FerryError && error.code === 'CONFLICT')) throw error;
          // Not a folder: a file of that name is listed alone.
          const opened = await this.openIn(parent, leaf, folderName, algorithm);
          await opened.handle.close();
          return [{ name: folderName, kind: 'file', size: opened.size, mtimeMs: opened.mtimeMs, digest: opened.digest } as StoredEntry];
        });
        return folder ?? missing();
      },
      missing,
    );
  }

  /**
   * A page of a folder (LIST with PAGE): its names are read in passes that keep only the
   * page's (list-page.ts), each name looked at as `listStream` does; a pass is repeated from
   * the last name kept only when files vanished meanwhile and the page is not full. Holds a
   * window of at most 8,192 names (namesAfter), never the folder.
   */
  async listPage(prefix: string, after: string, limit: number, options: ListOptions = {}): Promise<StoredEntry[]> {
    const algorithm = options.algorithm ?? 'sha256';
    const top = await this.listed(prefix, options);
    if (Array.isArray(top)) return top.filter((entry) => entry.name > after).slice(0, limit);
    try {
      const page: StoredEntry[] = [];
      let cursor = after;
      for (;;) {
        const { values: names, more } = await this.namesAfter(top, cursor, limit - page.length);
        for (const { name, leaf, folder } of names) {
          if (folder) {
            page.push({ name, kind: 'folder', size: 0, mtimeMs: 0, digest: NO_DIGEST });
            continue;
          }
          const listed = this.listedFromRecord(top, leaf, name, algorithm);
          if (listed === GONE) continue;
          if (listed !== undefined) {
            page.push(listed);
            continue;
          }
          try {
            const opened = await this.openIn(top, leaf, name, algorithm);
            await opened.handle.close();
            page.push({ name, kind: 'file', size: opened.size, mtimeMs: opened.mtimeMs, digest: opened.digest });
          } catch (error) {
            if (!(error instanceof FerryError && error.code === 'NOT_FOUND')) throw error;
          }
        }
        if (!more || page.length >= limit || names.length === 0) return page;
        cursor = names[names.length - 1]!.name;
      }
    } finally {
      await top.close();
    }
  }

  /**
   * The `count` first names of `folder` after `after` that a listing shows (files and folders
   * ferry can name): from the window a pass for an earlier page kept (list-page.ts), or read
   * synchronously with a turn of the event loop every few thousand, keeping a window of the
   * next pages' names. Names are compared and kept as leaves (≤ 255 bytes; a folder's full
   * names share its prefix, so they sort alike), never as full names of up to 4,096 bytes.
   */
  private async namesAfter(folder: Folder, after: string, count: number): Promise<{ values: ListedName[]; more: boolean }> {
    const prefix = folder.name === '' ? '' : `${folder.name}/`;
    const afterLeaf = after.startsWith(prefix) ? after.slice(prefix.length) : after < prefix ? '' : undefined;
    if (afterLeaf === undefined) return { values: [], more: false }; // after every name of the folder
    const named = (leaves: ListedLeaf[]): ListedName[] => leaves.map(({ leaf, folder }) => ({ name: prefix + leaf, leaf, folder }));
    const path = folder.path;
    const stamp = folderStamp(fstatSync(folder.fd, { bigint: true }), Date.now());
    const kept = stamp === undefined ? undefined : this.windows.take(folder.name, stamp, afterLeaf, count);
    if (kept !== undefined) return { values: named(kept.values), more: kept.more };
    const page = new SmallestAfter<ListedLeaf>(afterLeaf, NameWindows.windowFor(count));
    let dir: Dir;
    try {
      dir = opendirSync(path, { bufferSize: 256 });
    } catch (error) {
      if (isCode(error, 'ENOENT') || isCode(error, 'ENOTDIR')) return { values: [], more: false };
      throw error;
    }
    try {
      let seen = 0;
      for (let dirent = dir.readSync(); dirent !== null; dirent = dir.readSync()) {
        if (++seen % 4096 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
        const isFolder = dirent.isDirectory();
        if (!isFolder && !dirent.isFile()) continue; // links and special files are never listed
        const leaf = dirent.name;
        if (leaf <= afterLeaf || nameProblem(prefix + leaf) !== undefined) continue;
        page.offer(leaf, { leaf, folder: isFolder });
      }
    } finally {
      dir.closeSync();
    }
    const read = page.entries();
    this.windows.keep(folder.name, stamp, afterLeaf, read);
    return { values: named(read.entries.slice(0, count).map((entry) => entry.value)), more: read.entries.length > count || read.more };
  }

  /**
   * The entries `list` returns, in the same order, in batches, holding one folder's names per
   * level rather than the whole tree. `prefix` names a folder ('' for all, a trailing / is
   * dropped): recursive lists every file below it by full name, otherwise its files and
   * folders. A prefix naming a file lists just that file; one naming nothing lists nothing
   * (or, with `missing: 'error'`, is NOT_FOUND).
   */
  async *listStream(prefix: string, recursive: boolean, options: ListOptions = {}): AsyncGenerator<StoredEntry[]> {
    const algorithm = options.algorithm ?? 'sha256';
    const top = await this.listed(prefix, options);
    if (Array.isArray(top)) {
      if (top.length > 0) yield top;
      return;
    }
    const batch: StoredEntry[] = [];
    try {
      for await (const entry of this.walk(top, recursive, algorithm)) {
        batch.push(entry);
        if (batch.length >= LIST_BATCH) yield batch.splice(0);
      }
    } finally {
      await top.close();
    }
    if (batch.length > 0) yield batch;
  }

  /**
   * A listed file's entry from lstat and its digest record, with synchronous calls (a few
   * microseconds each from the caches, against seven thread-pool round trips to open, stat,
   * read the record and close): GONE when it is no longer a regular file, undefined when the
   * record is missing or stale (the caller opens and hashes the file).
   */
  private listedFromRecord(folder: Folder, leaf: string, name: string, algorithm: DigestAlgorithm): StoredEntry | typeof GONE | undefined {
    const stats = lstatSync(folder.entry(leaf), { throwIfNoEntry: false });
    if (stats === undefined || !stats.isFile()) return GONE;
    const digest = this.parts.digests.knownDigest(name, stats, algorithm);
    if (digest === undefined) return undefined;
    return { name, kind: 'file', size: stats.size, mtimeMs: Math.trunc(stats.mtimeMs), digest };
  }

  /**
   * Entries of `folder` in full-name order: each folder's names sorted, with "/" after the
   * names of sub-folders when they are walked into (so "a-b" comes before the files of "a/").
   */
  private async *walk(folder: Folder, recursive: boolean, algorithm: DigestAlgorithm): AsyncGenerator<StoredEntry> {
    let dirents: Dirent[];
    try {
      dirents = await fs.readdir(folder.path, { withFileTypes: true });
    } catch (error) {
      if (isCode(error, 'ENOENT') || isCode(error, 'ENOTDIR')) return;
      throw error;
    }
    const keyed = dirents.map((dirent) => ({ dirent, key: recursive && dirent.isDirectory() ? `${dirent.name}/` : dirent.name }));
    keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (const { dirent } of keyed) {
      const name = folder.name === '' ? dirent.name : `${folder.name}/${dirent.name}`;
      if (nameProblem(name) !== undefined) continue; // .ferry, and anything placed by hand that ferry could not name
      if (dirent.isDirectory()) {
        if (!recursive) {
          yield { name, kind: 'folder', size: 0, mtimeMs: 0, digest: NO_DIGEST };
          continue;
        }
        let child: Folder | undefined;
        try {
          child = await this.parts.root.openFolder([dirent.name], { from: folder });
        } catch (error) {
          if (error instanceof FerryError) continue; // swapped for a link or a file meanwhile
          throw error;
        }
        if (child === undefined) continue;
        try {
          yield* this.walk(child, true, algorithm);
        } finally {
          await child.close();
        }
      } else if (dirent.isFile()) {
        const listed = this.listedFromRecord(folder, dirent.name, name, algorithm);
        if (listed !== undefined) {
          if (listed !== GONE) yield listed;
          // Synchronous calls above: let other sessions in every so often.
          if (++this.syncListed % YIELD_EVERY === 0) await new Promise<void>((resolve) => setImmediate(resolve));
          continue;
        }
        try {
          const opened = await this.openIn(folder, dirent.name, name, algorithm);
          await opened.handle.close();
          yield { name, kind: 'file', size: opened.size, mtimeMs: opened.mtimeMs, digest: opened.digest };
        } catch (error) {
          if (!(error instanceof FerryError && error.code === 'NOT_FOUND')) throw error;
        }
      }
      // Symbolic links and special files are never listed or served.
    }
  }
}

/** What a failed open of stored file `name` means to the caller (a link is never followed: not found). */
function openFailure(error: unknown, name: string): unknown {
  if (isCode(error, 'ENOENT') || isCode(error, 'ELOOP')) return notFound(name);
  if (isCode(error, 'EISDIR')) return new FerryError('CONFLICT', `"${name}" is a folder`);
  return error;
}

/** The error for an opened entry that is not a regular file. */
function notAFile(stats: Stats, name: string): FerryError {
  return stats.isDirectory() ? new FerryError('CONFLICT', `"${name}" is a folder`) : notFound(name);
}
