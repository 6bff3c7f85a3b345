import { randomBytes } from 'node:crypto';
import { closeSync, constants, fdatasync, fstatSync, fsync, futimesSync, lstatSync, openSync, renameSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { FerryError } from '../errors.js';
import { digestOf, type DigestAlgorithm } from '../io/digest.js';
import { checkName, mapFsError } from './errors.js';
import { pickLeaf } from './leaf.js';
import { isCode, type Folder } from './safe-path.js';
import { freeSpaceSync } from './usage.js';
import type { StoredEntry, StoreParts } from './types.js';
import { mtimeSeconds } from '../io/file-times.js';

/** One small file of a batch upload: its bytes whole in memory, and the digest the client sent. */
export interface BatchFile {
  name: string;
  data: Buffer;
  /** The client's digest of `data`, in `BatchOptions.algorithm`. */
  digest: Buffer;
  /** The stored file's modification time (put -p); the commit's time when undefined. */
  mtimeMs?: number;
}

export interface BatchOptions {
  overwrite?: boolean;
  rename?: boolean;
  /** A file already stored with the same size and digest is left alone: `identical`. */
  skipIdentical?: boolean;
  algorithm?: DigestAlgorithm;
  /**
   * Temporaries the batch may hold open at once (the open-file slots its caller was granted):
   * a durable batch syncs half of them at a time. Default: `batchOpenFiles(true)`.
   */
  openFiles?: number;
}

/** What became of one file of a batch: each file is committed (or refused) on its own. */
export type BatchOutcome = { status: 'stored'; entry: StoredEntry } | { status: 'identical'; entry: StoredEntry } | { status: 'refused'; error: unknown };

/**
 * Temporaries synced at once. Why this many: concurrent fdatasyncs of new files share ext4's
 * journal commits, so the more wait together the fewer commits a batch costs. With the next
 * window written while one syncs, 32 on a 16-thread pool took 0.75× the wall of 8 on libuv's
 * default 4 (durable put -r of 10,000 × 1 KiB, 10 alternating pairs: 1.84 against 2.57 s).
 * The pool must be that wide to run them at once: the bin gives a local durable `serve` 16
 * threads (scripts/thread-pool.cjs).
 */
const SYNC_WINDOW = 32;

/** Temporaries one batch holds open at most: a window syncing, the next one written meanwhile (one at a time without fsync). */
export function batchOpenFiles(fsync: boolean): number {
  return fsync ? 2 * SYNC_WINDOW : 1;
}

interface Pending {
  index: number;
  file: BatchFile;
  /** The leaf in its folder. */
  leaf: string;
  tempName?: string;
  stats?: Stats;
}

/**
 * Batch uploads (PROTOCOL.md §5.5): many small files, each whole in memory, committed with
 * a few system calls each and no thread-pool round trip but the syncs. Per folder of the
 * batch: existing names are checked, the new bytes written to temporaries synchronously and
 * fdatasynced several at a time, each renamed into place under its name lock (its digest
 * record written first, as a single upload's), then the folder fsynced once. A file is
 * acknowledged only once all of that is done, so an acknowledged file survives a crash; each
 * file is atomic on its own (whole or absent), the batch as a whole is not.
 */
export class BatchUploads {
  constructor(private readonly parts: StoreParts) {}

  async store(files: BatchFile[], options: BatchOptions): Promise<BatchOutcome[]> {
    const algorithm = options.algorithm ?? 'sha256';
    const outcomes: BatchOutcome[] = new Array(files.length);
    const refuse = (index: number, error: unknown): void => {
      outcomes[index] = { status: 'refused', error: mapFsError(error) };
    };
    // Checks that need no disk: name, size limit, digest.
    const folders = new Map<string, Pending[]>();
    for (const [index, file] of files.entries()) {
      try {
        checkName(file.name);
        this.parts.root.checkPathLength(file.name);
        if (file.data.length > this.parts.maxFileSize) {
          throw new FerryError('TOO_LARGE', `${file.data.length} bytes is over the server's limit of ${this.parts.maxFileSize}`);
        }
        if (!digestOf(algorithm, file.data).equals(file.digest)) {
          throw new FerryError('INTEGRITY', `${algorithm} mismatch: the bytes received are not the bytes sent`);
        }
      } catch (error) {
        refuse(index, error);
        continue;
      }
      const components = file.name.split('/');
      const leaf = components.pop()!;
      const key = components.join('/');
      let group = folders.get(key);
      if (!group) folders.set(key, (group = []));
      group.push({ index, file, leaf });
    }
    // The batch's room is reserved at once (per file only when the whole does not fit).
    const reserved = this.reserve(folders, refuse);
    try {
      this.checkDisk(folders, reserved.bytes, refuse);
      for (const [key, group] of folders) {
        if (group.length > 0) await this.storeFolder(key === '' ? [] : key.split('/'), group, options, algorithm, outcomes, refuse);
      }
    } finally {
      this.parts.ledger.release(reserved.bytes);
    }
    return outcomes;
  }

  /** Reserves the bytes of every file still in `folders`; files that do not fit are refused (QUOTA). */
  private reserve(folders: Map<string, Pending[]>, refuse: (index: number, error: unknown) => void): { bytes: number } {
    const { ledger, partials } = this.parts;
    let total = 0;
    for (const group of folders.values()) for (const p of group) total += p.file.data.length;
    try {
      ledger.reserve(total, () => partials.evictOldest());
      return { bytes: total };
    } catch {
      let bytes = 0;
      for (const [key, group] of folders) {
        folders.set(
          key,
          group.filter((p) => {
            try {
              ledger.reserve(p.file.data.length, () => partials.evictOldest());
              bytes += p.file.data.length;
              return true;
            } catch (error) {
              refuse(p.index, error);
              return false;
            }
          }),
        );
      }
      return { bytes };
    }
  }

  /** One look at the free disk for the whole batch (its bytes and a file per entry). */
  private checkDisk(folders: Map<string, Pending[]>, bytes: number, refuse: (index: number, error: unknown) => void): void {
    let count = 0;
    for (const group of folders.values()) count += group.length;
    if (count === 0) return;
    const free = freeSpaceSync(this.parts.root.top.path);
    if (bytes <= free.bytes + this.parts.ledger.partials && count + folders.size <= free.files) return;
    const error = new FerryError('NO_SPACE', `the server has less than ${bytes} bytes of free disk space`);
    for (const group of folders.values()) for (const p of group) refuse(p.index, error);
    folders.clear();
  }

  private async storeFolder(
    components: string[],
    group: Pending[],
    options: BatchOptions,
    algorithm: DigestAlgorithm,
    outcomes: BatchOutcome[],
    refuse: (index: number, error: unknown) => void,
  ): Promise<void> {
    const { root, syncs, fsync: durable } = this.parts;
    let folder: Folder | undefined;
    /** This batch made the folder itself: no name in it needs a look before writing. */
    let madeHere = false;
    try {
      folder = await root.openFolder(components, {
        create: true,
        name: group[0]!.file.name,
        onCreating: (parent, made) => {
          // A new folder's entry must survive a power cut too: its parent is synced.
          const steps = durable ? syncs.creating(made, parent) : { made: async () => undefined, notMade: () => undefined };
          const last = made === components[components.length - 1];
          return {
            made: () => {
              if (last) madeHere = true;
              return steps.made();
            },
            notMade: () => steps.notMade(),
          };
        },
      });
      if (folder === undefined) throw new FerryError('CONFLICT', 'its folder was removed while the file was being stored');
    } catch (error) {
      for (const p of group) refuse(p.index, error);
      return;
    }
    try {
      // Names already taken are answered before any byte is written (checked again at the rename).
      const toWrite: Pending[] = [];
      for (const p of group) {
        const existing = madeHere ? undefined : lstatSync(folder.entry(p.leaf), { throwIfNoEntry: false });
        if (existing?.isDirectory()) refuse(p.index, new FerryError('CONFLICT', `"${p.file.name}" is a folder`));
        else if (existing && options.skipIdentical && (await this.identical(p, existing, algorithm))) {
          outcomes[p.index] = { status: 'identical', entry: entryOf(p.file.name, existing, p.file.digest) };
        } else if (existing && !options.overwrite && !options.rename) refuse(p.index, new FerryError('EXISTS', `"${p.file.name}" already exists`));
        else toWrite.push(p);
      }
      await this.writeTemporaries(toWrite, options.openFiles ?? batchOpenFiles(true), refuse);
      const renamed = await this.publish(folder, components, toWrite.filter((p) => p.tempName !== undefined && p.stats !== undefined), options, algorithm, outcomes, refuse);
      if (renamed && durable) {
        await syncs.sync(folder);
        await syncs.pathDurable(components);
      }
    } catch (error) {
      // The folder's sync failed (or worse): nothing of this folder is acknowledged.
      for (const p of group) if (outcomes[p.index]?.status !== 'refused') refuse(p.index, error);
    } finally {
      await folder.close();
    }
  }

  /** The stored file has the same size and, by a record that still describes it, the same digest. */
  private async identical(p: Pending, existing: Stats, algorithm: DigestAlgorithm): Promise<boolean> {
    if (!existing.isFile() || existing.size !== p.file.data.length) return false;
    try {
      return this.parts.digests.knownDigest(p.file.name, existing, algorithm)?.equals(p.file.digest) === true;
    } catch {
      return false; // an unreadable record: not known to be identical
    }
  }

  /**
   * Writes the files to temporaries (synchronously). Without fsync each is closed as soon as it
   * is written: one open at a time, nothing to wait for. With fsync, a window at a time, each
   * window synced on the thread pool while the next one is written: two windows of descriptors
   * fit in `openFiles` (a window of one at a time when only one does). A window's syncs are
   * started together, so they share the journal's commits.
   */
  private async writeTemporaries(pending: Pending[], openFiles: number, refuse: (index: number, error: unknown) => void): Promise<void> {
    if (!this.parts.fsync) {
      for (const p of pending) {
        const fd = this.writeTemporary(p, refuse);
        if (fd !== undefined) this.closeTemporary(p, fd, undefined, refuse);
      }
      return;
    }
    const window = Math.max(1, Math.min(SYNC_WINDOW, Math.floor(openFiles / 2)));
    const overlap = openFiles >= 2;
    let syncing: Promise<void> | undefined;
    for (let start = 0; start < pending.length; start += window) {
      if (!overlap) await syncing;
      const written: { p: Pending; fd: number }[] = [];
      for (const p of pending.slice(start, start + window)) {
        const fd = this.writeTemporary(p, refuse);
        if (fd !== undefined) written.push({ p, fd });
      }
      await syncing;
      syncing = this.syncWindow(written, refuse);
    }
    await syncing;
  }

  /** Writes one file to a new temporary, left open; undefined when that failed (the file is refused). */
  private writeTemporary(p: Pending, refuse: (index: number, error: unknown) => void): number | undefined {
    let fd: number | undefined;
    try {
      const temp = createTemporary(this.parts.tmp);
      fd = temp.fd;
      p.tempName = temp.name;
      for (let done = 0; done < p.file.data.length; ) done += writeSync(fd, p.file.data, done);
      if (p.file.mtimeMs !== undefined) futimesSync(fd, new Date(), mtimeSeconds(p.file.mtimeMs));
      return fd;
    } catch (error) {
      if (fd !== undefined) this.drop(p, fd);
      refuse(p.index, error);
      return undefined;
    }
  }

  /** Syncs a window of written temporaries at once and closes each. */
  private async syncWindow(written: { p: Pending; fd: number }[], refuse: (index: number, error: unknown) => void): Promise<void> {
    // fdatasync covers the bytes and the size; a set mtime needs fsync to be as durable.
    const synced = await Promise.all(
      written.map(({ p, fd }) => new Promise<unknown>((resolve) => (p.file.mtimeMs === undefined ? fdatasync : fsync)(fd, (error) => resolve(error ?? undefined)))),
    );
    written.forEach(({ p, fd }, i) => this.closeTemporary(p, fd, synced[i], refuse));
  }

  /** Records a written temporary's stats and closes it, or drops it when its sync (`error`) or the close failed. */
  private closeTemporary(p: Pending, fd: number, error: unknown, refuse: (index: number, error: unknown) => void): void {
    try {
      if (error) throw error;
      p.stats = fstatSync(fd);
      closeSync(fd);
    } catch (failure) {
      this.drop(p, fd);
      refuse(p.index, failure);
    }
  }

  /** Closes and removes a temporary that will not be published. */
  private drop(p: Pending, fd: number): void {
    try {
      closeSync(fd);
    } catch {
      // closed already
    }
    try {
      if (p.tempName !== undefined) unlinkSync(this.parts.tmp.entry(p.tempName));
    } catch {
      // never made
    }
    p.tempName = undefined;
  }

  /**
   * Renames the folder's written temporaries into place under their names' locks, as single
   * uploads commit: each name is checked again (a PUT may have stored it meanwhile; an earlier
   * file of this batch counts as there), then the records of all are appended to the folder's
   * digest log in one write — before any rename, as a single upload's record is — then each is
   * renamed. Returns whether any file was stored.
   */
  private async publish(
    folder: Folder,
    components: string[],
    written: Pending[],
    options: BatchOptions,
    algorithm: DigestAlgorithm,
    outcomes: BatchOutcome[],
    refuse: (index: number, error: unknown) => void,
  ): Promise<boolean> {
    if (written.length === 0) return false;
    const { locks, digests, ledger } = this.parts;
    const folderName = components.join('/');
    const nameOf = (leaf: string): string => (folderName === '' ? leaf : `${folderName}/${leaf}`);
    const drop = (p: Pending, error: unknown): void => {
      refuse(p.index, error);
      try {
        unlinkSync(this.parts.tmp.entry(p.tempName!));
      } catch {
        // already gone
      }
      p.tempName = undefined;
    };
    return locks.withAll(
      written.map((p) => p.file.name),
      async () => {
        const picked = new Map<string, Stats>();
        const ready: { p: Pending; leaf: string; existing: Stats | undefined }[] = [];
        for (const p of written) {
          try {
            const { leaf, existing } = pickLeaf(folder, p.leaf, p.file.name, options, picked);
            if (existing?.isDirectory()) throw new FerryError('CONFLICT', `"${nameOf(leaf)}" is a folder`);
            picked.set(leaf, p.stats!);
            ready.push({ p, leaf, existing });
          } catch (error) {
            drop(p, error);
          }
        }
        try {
          await digests.writeFolder(
            folderName,
            ready.map(({ p, leaf }) => [leaf, { digests: { [algorithm]: p.file.digest }, size: p.stats!.size, mtimeMs: Math.trunc(p.stats!.mtimeMs), ino: p.stats!.ino }] as const),
          );
        } catch (error) {
          for (const { p } of ready) drop(p, error);
          return false;
        }
        let renamed = false;
        for (const { p, leaf, existing } of ready) {
          const name = nameOf(leaf);
          try {
            renameSync(this.parts.tmp.entry(p.tempName!), folder.entry(leaf));
          } catch (error) {
            if (isCode(error, 'EISDIR') || isCode(error, 'ENOTEMPTY')) drop(p, new FerryError('CONFLICT', `"${name}" is a folder`));
            else if (isCode(error, 'ENOENT')) drop(p, new FerryError('CONFLICT', `"${name}": its folder was removed while the file was being stored`));
            else drop(p, error);
            continue;
          }
          p.tempName = undefined;
          renamed = true;
          ledger.storedChanged(p.stats!.size - (existing?.isFile() ? existing.size : 0));
          outcomes[p.index] = { status: 'stored', entry: entryOf(name, p.stats!, p.file.digest) };
        }
        return renamed;
      },
    );
  }
}

/** This process's batch temporaries: `<random>-<n>.part`; a random name per file cost a CSPRNG call each (O_EXCL still decides). */
const temporaryPrefix = randomBytes(9).toString('hex');
let temporaryCount = 0;

function createTemporary(tmp: Folder): { name: string; fd: number } {
  for (;;) {
    const name = `${temporaryPrefix}-${temporaryCount++}.part`;
    try {
      return { name, fd: openSync(tmp.entry(name), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644) };
    } catch (error) {
      if (!isCode(error, 'EEXIST')) throw error;
    }
  }
}

function entryOf(name: string, stats: Stats, digest: Buffer): StoredEntry {
  return { name, kind: 'file', size: stats.size, mtimeMs: Math.trunc(stats.mtimeMs), digest };
}
