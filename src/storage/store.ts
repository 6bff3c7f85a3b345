import { randomBytes } from 'node:crypto';
import { constants, promises as fs, type Dirent } from 'node:fs';
import path from 'node:path';
import { FerryError } from '../errors.js';
import { nameProblem, normalizePrefix, RESERVED_COMPONENT } from '../protocol/names.js';
import { DigestCache } from './digest-cache.js';
import { FileSink } from '../transport/file-sink.js';
import {
  isCode,
  makeParents,
  notFound,
  openStoredFile,
  parentsAreRealFolders,
  storedPath,
  syncDirectory,
} from './safe-path.js';

export interface StoredEntry {
  name: string;
  kind: 'file' | 'folder';
  size: number;
  mtimeMs: number;
  sha256: Buffer;
}

export interface StoreOptions {
  /** Largest file accepted, in bytes. */
  maxFileSize?: number;
  /** fsync file and folder before a commit is acknowledged (default true). */
  fsync?: boolean;
}

export interface UploadOptions {
  overwrite?: boolean;
  /** On a clash, store as "name (1).ext", "name (2).ext", … instead of failing. */
  rename?: boolean;
  /** Declared size, checked against the limit up front; undefined when unknown. */
  size?: number;
}

export interface OpenedFile {
  handle: fs.FileHandle;
  size: number;
  mtimeMs: number;
  sha256: Buffer;
}

const ZERO_SHA = Buffer.alloc(32);

/** Throws BAD_NAME unless `name` is acceptable (PROTOCOL.md "Names"). */
export function checkName(name: string): void {
  const problem = nameProblem(name);
  if (problem !== undefined) throw new FerryError('BAD_NAME', `bad name: ${problem}`);
}

/**
 * A folder of files addressed by safe relative names, with atomic, verified, durable writes.
 * Internal state lives in `<root>/.ferry/`: `tmp/` for uploads in progress, `meta/` for the
 * digest records. Only this process writes to the root (one server per root).
 */
export class Store {
  readonly root: string;
  readonly stateDir: string;
  readonly tmpDir: string;
  readonly maxFileSize: number;
  readonly fsync: boolean;
  private readonly digests: DigestCache;
  /** Per-name commit locks: the check-then-rename of a commit is atomic within this process. */
  private readonly locks = new Map<string, Promise<void>>();

  private constructor(root: string, options: StoreOptions) {
    this.root = root;
    this.stateDir = path.join(root, RESERVED_COMPONENT);
    this.tmpDir = path.join(this.stateDir, 'tmp');
    this.maxFileSize = options.maxFileSize ?? Number.MAX_SAFE_INTEGER;
    this.fsync = options.fsync ?? true;
    this.digests = new DigestCache(path.join(this.stateDir, 'meta'));
  }

  /** Opens (creating if missing) a store and sweeps temporaries left by a previous run. */
  static async open(root: string, options: StoreOptions = {}): Promise<Store> {
    const absolute = path.resolve(root);
    await fs.mkdir(absolute, { recursive: true });
    const store = new Store(await fs.realpath(absolute), options);
    await fs.rm(store.tmpDir, { recursive: true, force: true });
    await fs.mkdir(store.tmpDir, { recursive: true });
    return store;
  }

  async stat(name: string): Promise<StoredEntry> {
    checkName(name);
    const opened = await this.openRead(name);
    await opened.handle.close();
    return { name, kind: 'file', size: opened.size, mtimeMs: opened.mtimeMs, sha256: opened.sha256 };
  }

  /** Opens a file for download; the handle keeps reading this version even if it is replaced. */
  async openRead(name: string): Promise<OpenedFile> {
    checkName(name);
    const handle = await openStoredFile(this.root, name);
    try {
      const stats = await handle.stat();
      const sha256 = await this.digests.digestOf(name, handle, stats);
      return { handle, size: stats.size, mtimeMs: Math.trunc(stats.mtimeMs), sha256 };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /**
   * Lists stored files under `prefix` ('' for all). Recursive: every file below, by full
   * name. Otherwise: the files and folders directly in that folder.
   */
  async list(prefix: string, recursive: boolean): Promise<StoredEntry[]> {
    const folder = normalizePrefix(prefix);
    if (folder !== '') checkName(folder);
    const entries: StoredEntry[] = [];
    if (folder !== '' && !(await parentsAreRealFolders(this.root, `${folder}/x`))) return entries;
    await this.walk(folder, recursive, entries);
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return entries;
  }

  private async walk(folder: string, recursive: boolean, out: StoredEntry[]): Promise<void> {
    let dirents: Dirent[];
    try {
      dirents = await fs.readdir(folder === '' ? this.root : storedPath(this.root, folder), { withFileTypes: true });
    } catch (error) {
      if (isCode(error, 'ENOENT') || isCode(error, 'ENOTDIR')) return;
      throw error;
    }
    for (const dirent of dirents) {
      const name = folder === '' ? dirent.name : `${folder}/${dirent.name}`;
      if (nameProblem(name) !== undefined) continue; // .ferry, and anything placed by hand that ferry could not name
      if (dirent.isDirectory()) {
        if (recursive) await this.walk(name, true, out);
        else out.push({ name, kind: 'folder', size: 0, mtimeMs: 0, sha256: ZERO_SHA });
      } else if (dirent.isFile()) {
        try {
          const opened = await this.openRead(name);
          await opened.handle.close();
          out.push({ name, kind: 'file', size: opened.size, mtimeMs: opened.mtimeMs, sha256: opened.sha256 });
        } catch (error) {
          if (!(error instanceof FerryError && error.code === 'NOT_FOUND')) throw error;
        }
      }
      // Symbolic links and special files are never listed or served.
    }
  }

  /** Checks an upload's name and declared size before any body byte is accepted. */
  async checkUpload(name: string, options: UploadOptions): Promise<void> {
    checkName(name);
    if (options.size !== undefined && options.size > this.maxFileSize) {
      throw new FerryError('TOO_LARGE', `${options.size} bytes is over the server's limit of ${this.maxFileSize}`);
    }
    if (!options.overwrite && !options.rename && (await this.exists(name))) {
      throw new FerryError('EXISTS', `"${name}" already exists (use overwrite to replace it)`);
    }
  }

  async exists(name: string): Promise<boolean> {
    if (!(await parentsAreRealFolders(this.root, name))) return false;
    try {
      await fs.lstat(storedPath(this.root, name));
      return true;
    } catch (error) {
      if (isCode(error, 'ENOENT')) return false;
      throw error;
    }
  }

  /** Starts an upload into a private temporary; nothing is visible until `commit`. */
  async beginUpload(name: string, options: UploadOptions = {}): Promise<Upload> {
    await this.checkUpload(name, options);
    const tempPath = path.join(this.tmpDir, `${randomBytes(12).toString('hex')}.part`);
    const handle = await fs.open(tempPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
    return new Upload(this, name, options, handle, tempPath);
  }

  /** Moves a finished temporary into place under the name lock (see Upload.commit). */
  async commitTemp(name: string, tempPath: string, options: UploadOptions, sha256: Buffer): Promise<StoredEntry> {
    return this.withLock(name, async () => {
      const finalName = await this.pickName(name, options);
      await makeParents(this.root, finalName);
      const target = storedPath(this.root, finalName);
      const stats = await fs.stat(tempPath);
      const mtimeMs = Math.trunc(stats.mtimeMs);
      // Record first: if we crash between the two renames the record names the wrong inode
      // and is ignored, so a stale digest can never be served.
      await this.digests.write(finalName, { sha256, size: stats.size, mtimeMs, ino: stats.ino }, this.fsync);
      try {
        await fs.rename(tempPath, target);
      } catch (error) {
        if (isCode(error, 'EISDIR') || isCode(error, 'ENOTEMPTY')) {
          throw new FerryError('CONFLICT', `"${finalName}" is a folder`);
        }
        throw error;
      }
      if (this.fsync) await syncDirectory(path.dirname(target));
      return { name: finalName, kind: 'file', size: stats.size, mtimeMs, sha256 };
    });
  }

  private async pickName(name: string, options: UploadOptions): Promise<string> {
    if (options.overwrite || !(await this.exists(name))) return name;
    if (!options.rename) throw new FerryError('EXISTS', `"${name}" already exists (use overwrite to replace it)`);
    const slash = name.lastIndexOf('/');
    const base = name.slice(slash + 1);
    const dot = base.lastIndexOf('.');
    const stem = dot > 0 ? name.slice(0, slash + 1 + dot) : name;
    const ext = dot > 0 ? base.slice(dot) : '';
    for (let n = 1; n < 10_000; n++) {
      const candidate = `${stem} (${n})${ext}`;
      if (nameProblem(candidate) === undefined && !(await this.exists(candidate))) return candidate;
    }
    throw new FerryError('EXISTS', `no free name like "${name}"`);
  }

  async remove(name: string): Promise<void> {
    checkName(name);
    await this.withLock(name, async () => {
      if (!(await parentsAreRealFolders(this.root, name))) throw notFound(name);
      const target = storedPath(this.root, name);
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
      await this.digests.remove(name);
      await this.pruneEmptyParents(name);
    });
  }

  /** Folders exist only to hold files: drop the ones a removal left empty. */
  private async pruneEmptyParents(name: string): Promise<void> {
    const components = name.split('/');
    for (let depth = components.length - 1; depth > 0; depth--) {
      try {
        await fs.rmdir(storedPath(this.root, components.slice(0, depth).join('/')));
      } catch {
        return; // not empty (or gone): stop climbing
      }
    }
  }

  private async withLock<T>(name: string, task: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(name) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => (release = resolve));
    const chained = previous.then(() => current);
    this.locks.set(name, chained);
    await previous;
    try {
      return await task();
    } finally {
      release();
      if (this.locks.get(name) === chained) this.locks.delete(name);
    }
  }
}

/**
 * One upload in progress: bytes go to a private temporary, hashed as they are written.
 * `commit` verifies size and digest, makes the bytes durable and publishes them in one rename;
 * `abort` removes every trace. Exactly one of the two must be called.
 */
export class Upload {
  readonly sink: FileSink;
  private done = false;

  constructor(
    private readonly store: Store,
    readonly name: string,
    private readonly options: UploadOptions,
    private readonly handle: fs.FileHandle,
    private readonly tempPath: string,
  ) {
    this.sink = new FileSink(handle);
  }

  /** Returns false when the caller should pause its source until `sink.onDrain`. */
  write(chunk: Buffer): boolean {
    if (this.sink.bytes + chunk.length > this.store.maxFileSize) {
      throw new FerryError('TOO_LARGE', `upload is over the server's limit of ${this.store.maxFileSize} bytes`);
    }
    return this.sink.write(chunk);
  }

  async commit(expected: { size?: number; sha256?: Buffer }): Promise<StoredEntry> {
    this.done = true;
    try {
      const { size, sha256 } = await this.sink.finish();
      if (expected.size !== undefined && size !== expected.size) {
        throw new FerryError('INTEGRITY', `received ${size} bytes but ${expected.size} were declared`);
      }
      if (expected.sha256 !== undefined && !expected.sha256.equals(sha256)) {
        throw new FerryError('INTEGRITY', `sha256 mismatch: the bytes received are not the bytes sent`);
      }
      if (this.store.fsync) await this.handle.sync();
      await this.handle.close();
      return await this.store.commitTemp(this.name, this.tempPath, this.options, sha256);
    } catch (error) {
      await this.discard();
      throw mapFsError(error);
    }
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.discard();
  }

  private async discard(): Promise<void> {
    await this.sink.settle();
    await this.handle.close().catch(() => undefined);
    await fs.rm(this.tempPath, { force: true });
  }
}

/** Turns the file-system errors a client can cause into protocol errors. */
export function mapFsError(error: unknown): unknown {
  if (error instanceof FerryError) return error;
  if (isCode(error, 'ENOSPC')) return new FerryError('NO_SPACE', 'the server is out of disk space', { cause: error });
  if (isCode(error, 'EDQUOT')) return new FerryError('QUOTA', 'the server is over its disk quota', { cause: error });
  if (isCode(error, 'ENAMETOOLONG')) return new FerryError('BAD_NAME', 'name too long for the server', { cause: error });
  return error;
}
