import { randomBytes, type Hash } from 'node:crypto';
import { constants, lstatSync, promises as fs, type Dirent, type Stats } from 'node:fs';
import path from 'node:path';
import { FerryError } from '../errors.js';
import { nameProblem, normalizePrefix, RESERVED_COMPONENT } from '../protocol/names.js';
import { InlineDigester } from '../io/digester.js';
import { hashPrefix } from '../io/hash-prefix.js';
import { DigestCache } from './digest-cache.js';
import { freeBytes, usedBytes } from './usage.js';
import { PartialStore } from './partials.js';
import { FileSink } from '../io/file-sink.js';
import {
  forgetFolders,
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
  /** Total bytes the root may hold (stored files, uploads in progress, kept partials). */
  quota?: number;
  /** fsync file and folder before a commit is acknowledged (default true). */
  fsync?: boolean;
  /** How long an interrupted upload is kept for resuming (default 24 h). */
  partialTtlMs?: number;
}

export interface UploadOptions {
  overwrite?: boolean;
  /** On a clash, store as "name (1).ext", "name (2).ext", … instead of failing. */
  rename?: boolean;
  /** Declared size, checked against the limit up front; undefined when unknown. */
  size?: number;
  /** Continue the partial kept from an interrupted upload of this name and size, if any. */
  resume?: boolean;
}

/** A probed partial: its length and the hash of those bytes, kept open to be continued. */
interface ProbedPartial {
  offset: number;
  hash: Hash;
  expires: number;
}

const PROBE_CACHE_MS = 60_000;
/** Files unlinked at once by a folder removal. */
const REMOVE_BATCH = 64;
const PROBE_CACHE_MAX = 1000;

export interface OpenedFile {
  handle: fs.FileHandle;
  size: number;
  mtimeMs: number;
  sha256: Buffer;
}

const ZERO_SHA = Buffer.alloc(32);
/** sha256 of zero bytes. */
const EMPTY_SHA = Buffer.from('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'hex');

function probeKey(name: string, size: number): string {
  return `${size}\0${name}`;
}

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
  readonly quota: number | undefined;
  /** Bytes under the root at the last quota check (for the per-chunk check of uploads). */
  private usedAtCheck = 0;
  readonly fsync: boolean;
  private readonly digests: DigestCache;
  readonly partials: PartialStore;
  /** Hash state of recently probed partials, so the resume that follows need not reread them. */
  private readonly probed = new Map<string, ProbedPartial>();
  /** Per-name commit locks: the check-then-rename of a commit is atomic within this process. */
  private readonly locks = new Map<string, Promise<void>>();

  private constructor(root: string, options: StoreOptions) {
    this.root = root;
    this.stateDir = path.join(root, RESERVED_COMPONENT);
    this.tmpDir = path.join(this.stateDir, 'tmp');
    this.maxFileSize = options.maxFileSize ?? Number.MAX_SAFE_INTEGER;
    this.quota = options.quota;
    this.fsync = options.fsync ?? true;
    this.digests = new DigestCache(path.join(this.stateDir, 'meta'));
    this.partials = new PartialStore(path.join(this.stateDir, 'partial'), this.tmpDir, options.partialTtlMs ?? 24 * 3600_000);
  }

  /** Opens (creating if missing) a store and sweeps temporaries left by a previous run. */
  static async open(root: string, options: StoreOptions = {}): Promise<Store> {
    const absolute = path.resolve(root);
    await fs.mkdir(absolute, { recursive: true });
    const store = new Store(await fs.realpath(absolute), options);
    await fs.rm(store.tmpDir, { recursive: true, force: true });
    await fs.mkdir(store.tmpDir, { recursive: true });
    await store.partials.init();
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
    await this.checkSpace(options.size ?? 0);
  }

  /**
   * Refuses `size` more bytes that the quota or the disk (fs.statfs) cannot take. With a
   * quota, everything under the root counts, a file being replaced too until its commit.
   */
  async checkSpace(size: number): Promise<void> {
    if (this.quota !== undefined) {
      this.usedAtCheck = await usedBytes(this.root);
      if (this.usedAtCheck + size > this.quota) {
        throw new FerryError('QUOTA', `the server's quota of ${this.quota} bytes has no room for ${size} more (${this.usedAtCheck} used)`);
      }
    }
    if (size > 0 && size > (await freeBytes(this.root))) {
      throw new FerryError('NO_SPACE', `the server has less than ${size} bytes of free disk space`);
    }
  }

  /** Sync check while an upload streams: would `bytes` more (of this upload) break the quota? */
  overQuota(bytes: number): boolean {
    return this.quota !== undefined && this.usedAtCheck + bytes > this.quota;
  }

  async exists(name: string): Promise<boolean> {
    if (!(await parentsAreRealFolders(this.root, name))) return false;
    // lstatSync with throwIfNoEntry: on the hot path of every upload, a missing name is the
    // normal case, and building an ENOENT error for it cost more than the lookup itself.
    return lstatSync(storedPath(this.root, name), { throwIfNoEntry: false }) !== undefined;
  }


  /**
   * Starts an upload into a private temporary; nothing is visible until `commit`. With
   * `resume`, continues the kept partial of this name and size (see `upload.offset`).
   */
  async beginUpload(name: string, options: UploadOptions = {}): Promise<Upload> {
    await this.checkUpload(name, options);
    const size = options.size;
    if (size !== undefined && options.resume) {
      const claimed = await this.partials.claim(name, size);
      if (claimed !== undefined) return this.resumeUpload(name, options, size, claimed);
    } else if (size !== undefined) {
      await this.partials.discard(name, size); // a fresh start replaces any partial
    }
    const tempPath = path.join(this.tmpDir, `${randomBytes(12).toString('hex')}.part`);
    const handle = await fs.open(tempPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
    return new Upload(this, name, options, handle, tempPath, 0, undefined);
  }

  private async resumeUpload(name: string, options: UploadOptions, size: number, tempPath: string): Promise<Upload> {
    const handle = await fs.open(tempPath, constants.O_RDWR);
    try {
      const held = (await handle.stat()).size;
      const key = probeKey(name, size);
      const probe = this.probed.get(key);
      this.probed.delete(key);
      // Continue the hash computed by the probe when the partial is unchanged since.
      let offset = Math.min(held, size);
      let hash: Hash;
      if (probe && probe.offset <= offset && probe.expires > Date.now()) {
        offset = probe.offset;
        hash = probe.hash;
      } else {
        hash = await hashPrefix(handle, offset);
      }
      await handle.truncate(offset);
      return new Upload(this, name, options, handle, tempPath, offset, hash);
    } catch (error) {
      await handle.close();
      await fs.rm(tempPath, { force: true });
      throw error;
    }
  }

  /**
   * How much of an interrupted upload of (name, size) is kept, and the sha256 of those bytes.
   * The hash state is remembered briefly so a resume right after does not reread them.
   */
  async probeUpload(name: string, size: number): Promise<{ offset: number; sha256: Buffer }> {
    checkName(name);
    const offset = await this.partials.sizeOf(name, size);
    if (offset === 0) return { offset: 0, sha256: EMPTY_SHA };
    const claimed = await this.partials.claim(name, size);
    if (claimed === undefined) return { offset: 0, sha256: EMPTY_SHA };
    try {
      const handle = await fs.open(claimed, 'r');
      let hash: Hash;
      try {
        hash = await hashPrefix(handle, offset);
      } finally {
        await handle.close();
      }
      if (this.probed.size >= PROBE_CACHE_MAX) this.probed.clear();
      this.probed.set(probeKey(name, size), { offset, hash, expires: Date.now() + PROBE_CACHE_MS });
      return { offset, sha256: hash.copy().digest() };
    } finally {
      await this.partials.keep(claimed, name, size);
    }
  }

  /** sha256 of the first `length` bytes of a stored file (clamped to its size): a download's resume check. */
  async hashPrefix(name: string, length: number): Promise<{ offset: number; sha256: Buffer }> {
    const opened = await this.openRead(name);
    try {
      const offset = Math.min(length, opened.size);
      return { offset, sha256: (await hashPrefix(opened.handle, offset)).digest() };
    } finally {
      await opened.handle.close();
    }
  }

  /** Moves a finished temporary into place under the name lock (see Upload.commit). */
  async commitTemp(name: string, tempPath: string, options: UploadOptions, sha256: Buffer, stats: Stats): Promise<StoredEntry> {
    return this.withLock(name, async () => {
      const finalName = await this.pickName(name, options);
      const createdFolders = await makeParents(this.root, finalName);
      const target = storedPath(this.root, finalName);
      const mtimeMs = Math.trunc(stats.mtimeMs);
      // Record first: if we crash between the two renames the record names the wrong inode
      // and is ignored, so a stale digest can never be served.
      await this.digests.write(finalName, { sha256, size: stats.size, mtimeMs, ino: stats.ino });
      try {
        await fs.rename(tempPath, target);
      } catch (error) {
        if (isCode(error, 'EISDIR') || isCode(error, 'ENOTEMPTY')) {
          throw new FerryError('CONFLICT', `"${finalName}" is a folder`);
        }
        throw error;
      }
      if (this.fsync) {
        await syncDirectory(path.dirname(target));
        // New folders on the way must survive a power cut too: sync the entries naming them.
        for (const folder of createdFolders.reverse()) await syncDirectory(path.dirname(folder));
      }
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

  /**
   * Removes the folder `prefix` with everything in it; returns how many files went. Walks the
   * folder itself (no digests are read) and never follows a link: links inside are removed
   * as entries, like any other.
   */
  async removeTree(prefix: string): Promise<number> {
    const folder = normalizePrefix(prefix);
    checkName(folder);
    const missing = new FerryError('NOT_FOUND', `no folder named "${folder}"`);
    if (!(await parentsAreRealFolders(this.root, `${folder}/x`))) throw missing;
    const top = storedPath(this.root, folder);
    const stats = await fs.lstat(top).catch((error: unknown) => {
      throw isCode(error, 'ENOENT') ? missing : error;
    });
    if (stats.isFile()) throw new FerryError('CONFLICT', `"${folder}" is a file, not a folder`);
    if (!stats.isDirectory()) throw missing;
    let count = 0;
    const removeFolder = async (name: string, dir: string): Promise<void> => {
      const dirents = await fs.readdir(dir, { withFileTypes: true });
      for (const dirent of dirents) if (dirent.isDirectory()) await removeFolder(`${name}/${dirent.name}`, path.join(dir, dirent.name));
      // Unlinks wait on the journal, not the CPU: run a batch at a time.
      const files = dirents.filter((d) => !d.isDirectory());
      for (let start = 0; start < files.length; start += REMOVE_BATCH) {
        await Promise.all(
          files.slice(start, start + REMOVE_BATCH).map((dirent) => {
            const child = `${name}/${dirent.name}`;
            if (dirent.isFile()) count++;
            return this.withLock(child, async () => {
              await fs.rm(path.join(dir, dirent.name), { force: true });
              await this.digests.remove(child);
            });
          }),
        );
      }
      await fs.rmdir(dir);
    };
    await removeFolder(folder, top);
    forgetFolders();
    await this.pruneEmptyParents(folder);
    if (this.fsync) await syncDirectory(path.dirname(top));
    return count;
  }


  /** Folders exist only to hold files: drop the ones a removal left empty. */
  private async pruneEmptyParents(name: string): Promise<void> {
    const components = name.split('/');
    for (let depth = components.length - 1; depth > 0; depth--) {
      try {
        await fs.rmdir(storedPath(this.root, components.slice(0, depth).join('/')));
        forgetFolders();
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
    /** Bytes already held from an interrupted upload; the body continues from here. */
    readonly offset: number,
    prefixHash: Hash | undefined,
  ) {
    // The server hashes on its event loop: measured on 2 cores (where the client hashes too),
    // a hashing thread made 1 GiB uploads ~7% faster but cost ~13 MB of server memory.
    this.sink = new FileSink(handle, offset, new InlineDigester(prefixHash));
    this.prefixSha256 = prefixHash ? prefixHash.copy().digest() : EMPTY_SHA;
  }

  /** sha256 of the first `offset` bytes. */
  readonly prefixSha256: Buffer;

  /** Returns false when the caller should pause its source until `sink.onDrain`. */
  write(chunk: Buffer): boolean {
    if (this.offset + this.sink.bytes + chunk.length > this.store.maxFileSize) {
      throw new FerryError('TOO_LARGE', `upload is over the server's limit of ${this.store.maxFileSize} bytes`);
    }
    if (this.store.overQuota(this.sink.bytes + chunk.length)) {
      throw new FerryError('QUOTA', `upload is over the server's quota of ${this.store.quota} bytes`);
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
      const stats = await this.handle.stat();
      await this.handle.close();
      if (this.store.quota !== undefined) await this.store.checkSpace(0); // this upload now counts whole
      return await this.store.commitTemp(this.name, this.tempPath, this.options, sha256, stats);
    } catch (error) {
      await this.discard();
      throw mapFsError(error);
    }
  }

  /**
   * Gives up the upload. With `keepPartial` (the connection was lost mid-body) the bytes
   * received are kept for a resume, when the upload had a declared size to resume against.
   */
  async abort(keepPartial = false): Promise<void> {
    if (this.done) return;
    this.done = true;
    const size = this.options.size;
    if (keepPartial && size !== undefined && this.offset + this.sink.bytes > 0) {
      try {
        await this.sink.finish();
        await this.handle.close();
        await this.store.partials.keep(this.tempPath, this.name, size);
        return;
      } catch {
        // could not keep it: fall through and discard
      }
    }
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
