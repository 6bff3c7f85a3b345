import { promises as fs } from 'node:fs';
import path from 'node:path';
import { systemClock } from '../clock.js';
import type { DigestAlgorithm } from '../io/digest.js';
import { hashPrefix } from '../io/hash-prefix.js';
import { RESERVED_COMPONENT } from '../protocol/names.js';
import { Activity } from './activity.js';
import { BatchUploads, batchOpenFiles, type BatchFile, type BatchOptions, type BatchOutcome } from './batch.js';
import { Mover } from './moves.js';
import { DigestCache } from './digest-cache.js';
import { NameLocks } from './locks.js';
import { PartialStore } from './partials.js';
import { Reader } from './reads.js';
import { Remover } from './removal.js';
import { FolderSyncs, SafeRoot } from './safe-path.js';
import { SpaceLedger } from './space.js';
import { Upload, Uploads } from './uploads.js';
import { freeSpace, storedBytes } from './usage.js';
import type { LocalFile, SpaceUse, StoreBackend } from './backend.js';
import type { SmallOutcome } from './read-batch.js';
import type { ListOptions, StoredEntry, StoreOptions, StoreParts, UploadOptions } from './types.js';

export { checkName, mapFsError } from './errors.js';
export { Upload } from './uploads.js';
export type { PartialInfo } from './partials.js';
export type { ListOptions, StoredEntry, StoreOptions, UploadOptions } from './types.js';
export type { KeptPartials, LocalFile, OpenedFile, RemoteFile, SpaceUse, StoreBackend, StoreUpload } from './backend.js';
export type { BatchFile, BatchOptions, BatchOutcome } from './batch.js';
export { closeFile, readRange } from './backend.js';

const DEFAULT_PARTIAL_TTL_MS = 24 * 3600_000;
const DEFAULT_MAX_PARTIALS = 1000;

/**
 * A folder of files addressed by safe relative names, with atomic, verified, durable writes.
 * Internal state lives in `<root>/.ferry/`: `tmp/` for uploads in progress, `partial/` for
 * interrupted uploads kept for resuming, `meta/` for the digest records. Only this process
 * writes to the root (one server per root). A thin facade over its parts: reads, uploads,
 * removal, space accounting and partials, each in its own module.
 */
export class Store implements StoreBackend {
  readonly stateDir: string;
  readonly tmpDir: string;
  readonly maxFileSize: number;
  readonly fsync: boolean;
  readonly batchOpenFiles: number;
  readonly partials: PartialStore;
  private readonly reader: Reader;
  private readonly uploads: Uploads;
  private readonly remover: Remover;
  private readonly mover: Mover;

  private constructor(private readonly parts: StoreParts) {
    this.stateDir = path.join(parts.root.root, RESERVED_COMPONENT);
    this.tmpDir = path.join(this.stateDir, 'tmp');
    this.maxFileSize = parts.maxFileSize;
    this.fsync = parts.fsync;
    this.batchOpenFiles = batchOpenFiles(parts.fsync);
    this.partials = parts.partials;
    this.reader = new Reader(parts);
    this.uploads = new Uploads(parts, this.reader);
    this.remover = new Remover(parts);
    this.mover = new Mover(parts);
  }

  /** Opens (creating if missing) a store and sweeps temporaries left by a previous run. */
  static async open(rootPath: string, options: StoreOptions = {}): Promise<Store> {
    const absolute = path.resolve(rootPath);
    await fs.mkdir(absolute, { recursive: true });
    const root = await SafeRoot.open(await fs.realpath(absolute), { pin: options.pinFolders });
    try {
      const tmp = await root.pin([RESERVED_COMPONENT, 'tmp']);
      for (const entry of await fs.readdir(tmp.path)) await fs.rm(tmp.entry(entry), { recursive: true, force: true });
      const meta = await root.pin([RESERVED_COMPONENT, 'meta']);
      const partialDir = await root.pin([RESERVED_COMPONENT, 'partial']);
      const ledger = new SpaceLedger(options.quota);
      if (options.quota !== undefined) ledger.stored = await storedBytes(root.root);
      const clock = options.clock ?? systemClock;
      const maxPartialBytes = options.maxPartialBytes ?? (await defaultMaxPartialBytes(root, options.quota));
      const partials = new PartialStore(partialDir, tmp, ledger, clock, {
        ttlMs: options.partialTtlMs ?? DEFAULT_PARTIAL_TTL_MS,
        maxCount: options.maxPartials ?? DEFAULT_MAX_PARTIALS,
        maxBytes: maxPartialBytes,
      });
      await partials.init();
      return new Store({
        root,
        tmp,
        digests: new DigestCache(root, meta),
        ledger,
        partials,
        locks: new NameLocks(),
        syncs: new FolderSyncs(),
        clock,
        activity: new Activity(),
        fsync: options.fsync ?? true,
        maxFileSize: options.maxFileSize ?? Number.MAX_SAFE_INTEGER,
      });
    } catch (error) {
      await root.close();
      throw error;
    }
  }

  /** Stops the partial-upload sweep and closes the folders and digest logs the store holds open. */
  async close(): Promise<void> {
    if (this.closed) return this.closed;
    this.closed = (async () => {
      await this.parts.activity.close();
      for (const upload of [...this.uploads.active]) await upload.abort();
      await this.parts.partials.close();
      this.parts.digests.close();
      await this.parts.root.close();
    })();
    return this.closed;
  }

  private closed: Promise<void> | undefined;

  private track<T>(work: () => Promise<T>): Promise<T> {
    return this.parts.activity.track(work);
  }

  get root(): string {
    return this.parts.root.root;
  }

  get location(): string {
    return this.parts.root.root;
  }

  get quota(): number | undefined {
    return this.parts.ledger.quota;
  }

  /** The running totals counted against the quota. */
  get space(): SpaceUse {
    const { quota, stored, partials, reserved } = this.parts.ledger;
    return { quota, stored, partials, reserved };
  }

  /** Whether folders are reached through /proc/self/fd (no symlink-swap window at all). */
  get pinned(): boolean {
    return this.parts.root.pinned;
  }

  /** The file `name`, its digest in `algorithm` (computed once and recorded if not yet known). */
  stat(name: string, algorithm: DigestAlgorithm = 'sha256'): Promise<StoredEntry> {
    return this.track(() => this.reader.stat(name, algorithm));
  }

  /** Opens a file for download; the handle keeps reading this version even if it is replaced. */
  readSmallFiles(names: string[], algorithm: DigestAlgorithm, maxBytes: number): Promise<(SmallOutcome | undefined)[]> {
    return this.track(() => this.reader.readSmall(names, algorithm, maxBytes));
  }

  openRead(name: string, algorithm: DigestAlgorithm = 'sha256'): Promise<LocalFile> {
    return this.track(() => this.reader.openRead(name, algorithm));
  }

  /**
   * Lists the folder `prefix` ('' for all; a trailing / is dropped). Recursive: every file
   * below, by full name. Otherwise: the files and folders directly in it. A prefix naming a
   * file lists that file; one naming nothing is an empty listing, or with `missing: 'error'`
   * NOT_FOUND. Sorted by name (UTF-16 code units).
   */
  list(prefix: string, recursive: boolean, options: ListOptions = {}): Promise<StoredEntry[]> {
    return this.track(() => this.reader.list(prefix, recursive, options));
  }

  /** `list` in batches, holding one folder's names per level, not the whole tree. */
  listStream(prefix: string, recursive: boolean, options: ListOptions = {}): AsyncIterable<StoredEntry[]> {
    return this.reader.listStream(prefix, recursive, options);
  }

  /** One page of a folder's listing (LIST with PAGE, v7; see StoreBackend). */
  listPage(prefix: string, after: string, limit: number, options: ListOptions = {}): Promise<StoredEntry[]> {
    return this.track(() => this.reader.listPage(prefix, after, limit, options));
  }

  /** Checks an upload's name, declared size and room before any body byte is accepted. */
  async checkUpload(name: string, options: UploadOptions): Promise<void> {
    await this.track(async () => {
      await this.uploads.check(name, options);
      await this.uploads.checkRoom(options.size ?? 0);
    });
  }

  exists(name: string): Promise<boolean> {
    return this.track(() => this.reader.exists(name));
  }

  /**
   * Starts an upload into a private temporary; nothing is visible until `commit`. With
   * `resume`, continues the kept partial of this name and size (see `upload.offset`).
   * Space for the declared size is reserved now (evicting kept partials if need be).
   */
  beginUpload(name: string, options: UploadOptions = {}): Promise<Upload> {
    return this.track(() => this.uploads.begin(name, options));
  }

  /**
   * How much of an interrupted upload of (name, size) is kept, and the digest of those bytes
   * in `algorithm` (whatever the partial was started with: the bytes are hashed again). The
   * hash state is remembered briefly so a resume right after does not reread them.
   */
  probeUpload(name: string, size: number, algorithm: DigestAlgorithm = 'sha256'): Promise<{ offset: number; digest: Buffer }> {
    return this.track(() => this.uploads.probe(name, size, algorithm));
  }

  /** Digest of the first `length` bytes of a stored file (clamped to its size): a download's resume check. */
  async hashPrefix(name: string, length: number, algorithm: DigestAlgorithm = 'sha256'): Promise<{ offset: number; digest: Buffer }> {
    return this.track(async () => {
      const opened = await this.reader.openRead(name, algorithm);
      try {
        const offset = Math.min(length, opened.size);
        return { offset, digest: (await hashPrefix(opened.handle, offset, algorithm)).peek() };
      } finally {
        await opened.handle.close();
      }
    });
  }

  remove(name: string): Promise<void> {
    return this.track(() => this.remover.remove(name));
  }

  /** Removes the folder `prefix` with everything in it; returns how many files went. */
  removeTree(prefix: string): Promise<number> {
    return this.track(() => this.remover.removeTree(prefix));
  }

  /**
   * Stores many small files, each whole in memory, each on its own (atomic per file, not per
   * batch): one outcome per file, in order, once every stored one is durable (see BatchUploads).
   */
  storeBatch(files: BatchFile[], options: BatchOptions = {}): Promise<BatchOutcome[]> {
    return this.track(() => new BatchUploads(this.parts).store(files, options));
  }

  /** Renames a file or folder (see Mover.rename). */
  rename(from: string, to: string, options: { overwrite?: boolean } = {}): Promise<{ kind: 'file' | 'folder' }> {
    return this.track(() => this.mover.rename(from, to, options));
  }

  /** Makes a folder and its missing parents; false when it already was one. */
  makeFolder(name: string): Promise<boolean> {
    return this.track(() => this.mover.makeFolder(name));
  }
}

/**
 * Half the quota, or without one half the disk space free at start (partials already kept
 * included): big interrupted uploads, the ones a resume matters most for, can still be kept,
 * while abandoned ones never take most of the room (and uploads evict them when they need it).
 */
async function defaultMaxPartialBytes(root: SafeRoot, quota: number | undefined): Promise<number> {
  if (quota !== undefined) return Math.floor(quota / 2);
  const free = await freeSpace(root.top.path);
  const held = await storedBytes(path.join(root.root, RESERVED_COMPONENT, 'partial'));
  return Math.floor((free.bytes + held) / 2);
}
