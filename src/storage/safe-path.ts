import { closeSync, constants, fstatSync, fsync, lstatSync, openSync, promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import { FerryError } from '../errors.js';

/**
 * Path resolution that never leaves the root, even while another process swaps folders for
 * symbolic links. A name is walked one component at a time from a descriptor of the root:
 * each folder is opened with O_DIRECTORY | O_NOFOLLOW *relative to the descriptor of its
 * already-checked parent*, and the final operation (open, mkdir, rename, unlink, readdir,
 * rmdir) is done relative to the descriptor of the last folder. Node has no openat(), so on
 * Linux "relative to a descriptor" is spelled `/proc/self/fd/<fd>/<component>`: the kernel
 * resolves the magic link to the very directory the descriptor holds, whatever its name now
 * points to, so a swap after a folder was checked cannot redirect anything. Nothing is
 * trusted for any time: every operation walks afresh (no cache of folders or descriptors).
 *
 * Where /proc/self/fd is not usable (not Linux), the walk falls back to lstat of each
 * component, then opens it with O_NOFOLLOW and checks with fstat that the folder opened is
 * the one lstat saw. The final operation then uses the full path again, so a component
 * swapped for a link between the walk and that operation (a window of one system call) can
 * still redirect it: on such systems nobody else may write inside the root.
 *
 * Folders are opened and closed with the synchronous calls: a directory open on a local file
 * system is a few microseconds of dentry lookup, far less than a round trip through libuv's
 * thread pool, and it happens once per path component of every operation.
 */

/** Longest path the system takes (PATH_MAX, with its terminating NUL). */
export const MAX_PATH_BYTES = 4096;

const DIRECTORY_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/** An open folder under the root; operations on its entries go through `entry(leaf)`. */
export class Folder {
  private closed = false;

  constructor(
    /** The open directory's descriptor. */
    readonly fd: number,
    /** A path reaching this very folder: /proc/self/fd/<fd> when pinned, else its full path. */
    private readonly reach: string,
    /** Its name under the root ('' for the root). */
    readonly name: string,
    /** The root's folder is shared by the whole store and outlives every operation. */
    private readonly owned: boolean,
    /** The folder this one is a view of (it shares its open/closed state). */
    private readonly origin?: Folder,
  ) {}

  /** A path reaching this very folder (refused once it is closed). */
  get path(): string {
    // A closed descriptor's number may be reused by another file: never build a path from it.
    if ((this.origin ?? this).closed) throw new FerryError('CLOSED', 'the store is closed');
    return this.reach;
  }

  /** Path of an entry in this folder (the entry itself is never followed if it is a link). */
  entry(leaf: string): string {
    return `${this.path}/${leaf}`;
  }

  async close(): Promise<void> {
    if (!this.owned || this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }

  /** fsync of the folder itself: makes its entries (renames, unlinks, new folders) durable. */
  sync(): Promise<void> {
    return new Promise((resolve, reject) => fsync(this.fd, (error) => (error ? reject(error) : resolve())));
  }

  /** The same folder for another user, whose close() leaves it open. */
  view(): Folder {
    return new Folder(this.fd, this.reach, this.name, false, this.origin ?? this);
  }

  /** Marks a shared folder closed (its owner closes the descriptor). */
  retire(): void {
    this.closed = true;
  }
}

export interface OpenFolderOptions {
  /** Create missing folders. */
  create?: boolean;
  /**
   * Called right before a missing folder is created, with its parent (still open) and its
   * name; `made` runs once it exists (to fsync the parent), `notMade` if another request made
   * it first or mkdir failed.
   */
  onCreating?: (parent: Folder, name: string) => { made(): Promise<void>; notMade(): void };
  /** The name being resolved, for error messages. */
  name?: string;
  /** Start from this folder instead of the root (it is left open). */
  from?: Folder;
}

export class SafeRoot {
  private constructor(
    readonly root: string,
    private readonly rootFolder: Folder,
    /** True when folders are reached through /proc/self/fd (no race window at all). */
    readonly pinned: boolean,
  ) {}

  /** Opens `root` (a real path, no links); `pin: false` forces the portable fallback. */
  static async open(root: string, options: { pin?: boolean } = {}): Promise<SafeRoot> {
    const fd = openSync(root, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      const pinned = options.pin !== false && procFdWorks(fd);
      const folder = new Folder(fd, pinned ? procPath(fd) : root, '', false);
      return new SafeRoot(root, folder, pinned);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  private readonly pinnedFolders: Folder[] = [];

  async close(): Promise<void> {
    for (const folder of this.pinnedFolders.splice(0)) {
      folder.retire();
      closeSync(folder.fd);
    }
    this.rootFolder.retire();
    closeSync(this.rootFolder.fd);
  }

  /** The root folder itself (closing it is a no-op). */
  get top(): Folder {
    return this.rootFolder;
  }

  /** The full path of a stored name, for messages and out-of-band tools only: never opened. */
  fullPath(name: string): string {
    return path.join(this.root, ...name.split('/'));
  }

  /** Refuses a name whose full path under the root would be over PATH_MAX (checked before anything is made). */
  checkPathLength(name: string): void {
    if (Buffer.byteLength(this.root, 'utf8') + 1 + Buffer.byteLength(name, 'utf8') >= MAX_PATH_BYTES) {
      throw new FerryError('BAD_NAME', `bad name: the server's folder path plus the name is longer than ${MAX_PATH_BYTES - 1} bytes`);
    }
  }

  /**
   * Opens the folder made of `components` (none: the root). Returns undefined when one is
   * missing (and `create` is off). A link on the way is BAD_NAME, a file on the way CONFLICT.
   * The caller closes the folder.
   */
  async openFolder(components: readonly string[], options: OpenFolderOptions = {}): Promise<Folder | undefined> {
    const start = options.from ?? this.rootFolder;
    let current = start;
    try {
      for (const component of components) {
        const next = await this.openChild(current, component, options);
        if (current !== start) await current.close();
        current = next as Folder;
        if (next === undefined) return undefined;
      }
      return current === start ? start.view() : current;
    } catch (error) {
      if (current !== start) await current.close();
      throw error;
    }
  }

  /**
   * Opens an existing folder `component` of `parent` with no thread-pool round trip, for hot
   * read paths (listings, digest records). Undefined when it is missing, is not a folder, or is
   * a link (never followed). The caller closes it.
   */
  openExistingSync(parent: Folder, component: string): Folder | undefined {
    const name = parent.name === '' ? component : `${parent.name}/${component}`;
    try {
      return this.openDirectory(parent.entry(component), name);
    } catch (error) {
      if (isCode(error, 'ENOENT') || isCode(error, 'ENOTDIR') || isCode(error, 'ELOOP') || error instanceof FerryError) return undefined;
      throw error;
    }
  }

  /**
   * Opens (creating) one of the server's own folders under the root and keeps it open for the
   * store's lifetime (closed by `close`): its contents are reached through it, never by path.
   */
  async pin(components: readonly string[]): Promise<Folder> {
    const folder = (await this.openFolder(components, { create: true }))!;
    const pinned = new Folder(folder.fd, folder.path, folder.name, false);
    this.pinnedFolders.push(pinned);
    return pinned;
  }

  /** Runs `task` with the folder holding `name` and its last component; closes the folder after. */
  async inParent<T>(name: string, options: OpenFolderOptions, task: (folder: Folder, leaf: string) => Promise<T>, missing: () => T | Promise<T>): Promise<T> {
    const components = name.split('/');
    const leaf = components.pop()!;
    const folder = await this.openFolder(components, { ...options, name });
    if (folder === undefined) return missing();
    try {
      return await task(folder, leaf);
    } finally {
      await folder.close();
    }
  }

  private async openChild(parent: Folder, component: string, options: OpenFolderOptions): Promise<Folder | undefined> {
    const name = parent.name === '' ? component : `${parent.name}/${component}`;
    const target = parent.entry(component);
    for (let attempt = 0; ; attempt++) {
      try {
        return this.openDirectory(target, name, options.name ?? name);
      } catch (error) {
        if (!isCode(error, 'ENOENT') || !options.create || attempt > 0) {
          if (isCode(error, 'ENOENT')) return undefined;
          if (isCode(error, 'ENOTDIR') || isCode(error, 'ELOOP')) throw await whyNotFolder(target, options.name ?? name);
          throw error;
        }
      }
      const creation = options.onCreating?.(parent, name);
      let made = false;
      try {
        await fs.mkdir(target);
        made = true;
      } catch (error) {
        creation?.notMade();
        if (!isCode(error, 'EEXIST')) throw error; // made meanwhile by another request: open it
      }
      if (made && creation) await creation.made();
    }
  }

  /** Opens the folder at `target` without following a link (synchronous: no pool round trip). */
  private openDirectory(target: string, name: string, forName = name): Folder {
    if (this.pinned) {
      const fd = openSync(target, DIRECTORY_FLAGS);
      return new Folder(fd, procPath(fd), name, true);
    }
    // Fallback: lstat, open without following, and check both saw the same folder.
    const seen = lstatSync(target);
    if (!seen.isDirectory()) throw Object.assign(new Error(`${target} is not a folder`), { code: 'ENOTDIR' });
    const fd = openSync(target, DIRECTORY_FLAGS);
    let opened: Stats;
    try {
      opened = fstatSync(fd);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    if (!sameFile(seen, opened)) {
      closeSync(fd);
      throw new FerryError('BAD_NAME', `"${forName}" changed while it was being opened`);
    }
    return new Folder(fd, target, name, true);
  }
}

async function whyNotFolder(target: string, name: string): Promise<FerryError> {
  const stats = await fs.lstat(target).catch(() => undefined);
  if (stats?.isSymbolicLink()) return new FerryError('BAD_NAME', `"${name}" passes through a symbolic link`);
  if (stats === undefined || stats.isDirectory()) return new FerryError('BAD_NAME', `"${name}" changed while it was being opened`);
  return new FerryError('CONFLICT', `"${name}": a parent of it is a file`);
}

function procPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

/** Whether /proc/self/fd/<fd> reaches the very folder held by `fd` (Linux with /proc). */
function procFdWorks(fd: number): boolean {
  if (process.platform !== 'linux') return false;
  try {
    return sameFile(lstatSync(`${procPath(fd)}/.`), fstatSync(fd));
  } catch {
    return false;
  }
}

export function sameFile(a: Stats, b: Stats): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

export function notFound(name: string): FerryError {
  return new FerryError('NOT_FOUND', `no file named "${name}"`);
}

export function isCode(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === code;
}

/**
 * fsync of folders so a rename or unlink in them survives a crash, with group commit: callers
 * that arrive while a sync of the same folder runs share the next one, so a burst of small
 * files into one folder costs a few directory fsyncs, not one per file. One per Store.
 */
export class FolderSyncs {
  private readonly groups = new Map<string, { running: Promise<void> | undefined; next: Promise<void> | undefined }>();
  /** Folders just made, by relative name, until their entry in the parent is synced. */
  private readonly made = new Map<string, Promise<void>>();

  /**
   * A folder `name` is about to be created in `parent`. Registered before the mkdir, so a commit
   * that finds the new folder at once still waits (in `pathDurable`) until `made()` has synced
   * the parent; `notMade()` when it was not created after all.
   */
  creating(name: string, parent: Folder): { made(): Promise<void>; notMade(): void } {
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    const previous = this.made.get(name);
    const entry = previous ? Promise.all([previous, done]).then(() => undefined) : done;
    this.made.set(name, entry);
    const settle = (): void => {
      resolve();
      if (this.made.get(name) === entry) this.made.delete(name);
    };
    return { made: () => this.sync(parent).finally(settle), notMade: settle };
  }

  /**
   * Resolves once every folder on the way to `components` that another commit has just made
   * is durable in its parent: a file is acknowledged only when its whole path would survive a
   * power cut, even when a concurrent commit made the folder and is still syncing it.
   */
  async pathDurable(components: string[]): Promise<void> {
    if (this.made.size === 0) return;
    for (let depth = 1; depth <= components.length; depth++) {
      const pending = this.made.get(components.slice(0, depth).join('/'));
      if (pending) await pending.catch(() => undefined);
    }
  }

  /** Syncs `folder` (keyed by its name: a folder swapped meanwhile may share a sync, harmlessly). */
  sync(folder: Folder): Promise<void> {
    const key = folder.name;
    let group = this.groups.get(key);
    if (group?.next) return group.next;
    if (!group) {
      group = { running: undefined, next: undefined };
      this.groups.set(key, group);
    }
    const state = group;
    const start = (): Promise<void> => {
      const run = folder.sync().finally(() => {
        state.running = undefined;
        if (!state.next) this.groups.delete(key);
      });
      state.running = run;
      return run;
    };
    if (!state.running) return start();
    // A sync is running but may predate our rename: queue exactly one more for everyone
    // waiting. This caller's folder stays open until then, since it awaits the result.
    state.next = state.running.catch(() => undefined).then(() => {
      state.next = undefined;
      return start();
    });
    return state.next;
  }
}
