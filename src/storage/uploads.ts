import { randomBytes } from 'node:crypto';
import { constants, promises as fs, type Stats } from 'node:fs';
import { FerryError } from '../errors.js';
import { EMPTY_DIGEST, type DigestAlgorithm, type Hasher } from '../io/digest.js';
import { createDigester, InlineDigester } from '../io/digester.js';
import { cutToPrefix, hashPrefix } from '../io/hash-prefix.js';
import { FileSink } from '../io/file-sink.js';
import { checkName, mapFsError } from './errors.js';
import { pickLeaf } from './leaf.js';
import type { Reader } from './reads.js';
import { isCode } from './safe-path.js';
import { freeSpace } from './usage.js';
import type { StoredEntry, StoreParts, UploadOptions } from './types.js';
import { mtimeSeconds } from '../io/file-times.js';

/** A probed partial: its length and the hash of those bytes, kept to be continued. */
interface ProbedPartial {
  offset: number;
  hasher: Hasher;
  expires: number;
}

const PROBE_CACHE_MS = 60_000;
const PROBE_CACHE_MAX = 1000;
/** A chunked upload reserves quota in steps of at least this much (fewer, cheaper checks). */
const RESERVE_STEP = 1024 * 1024;
/**
 * With fsync, the sink starts an fdatasync every this many bytes while it writes, so the
 * commit's fsync finds little left to write (measured in bench/durable-put.ts).
 */
const SYNC_EVERY = 16 * 1024 * 1024;
/** Bytes written past the last finished background sync before writing waits for it. */
const MAX_UNSYNCED = 64 * 1024 * 1024;
function probeKey(name: string, size: number, algorithm: DigestAlgorithm): string {
  return `${algorithm}\0${size}\0${name}`;
}

/** Uploads: checks before any byte, private temporaries, resumes, and the atomic commit. */
export class Uploads {
  /** Hash state of recently probed partials, so the resume that follows need not reread them. */
  private readonly probed = new Map<string, ProbedPartial>();
  /** Uploads in progress, for the free-disk check (room promised but not yet written). */
  readonly active = new Set<Upload>();

  constructor(
    private readonly parts: StoreParts,
    private readonly reader: Reader,
  ) {}

  /** Checks an upload's name and declared size before any body byte is accepted. */
  async check(name: string, options: UploadOptions): Promise<void> {
    checkName(name);
    this.parts.root.checkPathLength(name);
    const { maxFileSize } = this.parts;
    if (options.size !== undefined && options.size > maxFileSize) {
      throw new FerryError('TOO_LARGE', `${options.size} bytes is over the server's limit of ${maxFileSize}`);
    }
    // Also refuses a link or a file on the way (BAD_NAME, CONFLICT) before anything is made.
    const exists = await this.reader.exists(name);
    if (!options.overwrite && !options.rename && exists) {
      throw new FerryError('EXISTS', `"${name}" already exists`);
    }
  }

  /** The refusals `begin` would give for lack of room, without reserving or evicting anything. */
  async checkRoom(size: number): Promise<void> {
    const { ledger } = this.parts;
    if (!ledger.fits(size - ledger.partials)) {
      throw new FerryError('QUOTA', `the server's quota of ${ledger.quota} bytes has no room for ${size} more (${ledger.used} used)`);
    }
    let promised = 0;
    for (const upload of this.active) promised += upload.unwritten;
    if (size > 0 && size + promised > (await freeSpace(this.parts.root.top.path)).bytes + ledger.partials) {
      throw new FerryError('NO_SPACE', `the server has less than ${size} bytes of free disk space`);
    }
  }

  async begin(name: string, options: UploadOptions): Promise<Upload> {
    await this.check(name, options);
    const size = options.size;
    const { partials, ledger } = this.parts;
    if (size !== undefined && options.resume) {
      const claimed = await partials.claim(name, size);
      if (claimed !== undefined) return this.resume(name, options, size, claimed.tempName, claimed.held);
    } else if (size !== undefined) {
      await partials.discard(name, size); // a fresh start replaces any partial
    }
    const reservation = size ?? 0;
    ledger.reserve(reservation, () => partials.evictOldest());
    let handle: fs.FileHandle | undefined;
    const tempName = `${randomBytes(12).toString('hex')}.part`;
    try {
      await this.ensureDisk(reservation, name.split('/').length);
      handle = await fs.open(this.parts.tmp.entry(tempName), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    } catch (error) {
      ledger.release(reservation);
      throw mapFsError(error);
    }
    return new Upload(this, this.parts, name, options, handle, tempName, 0, undefined, reservation);
  }

  private async resume(name: string, options: UploadOptions, size: number, tempName: string, held: number): Promise<Upload> {
    const { ledger, partials } = this.parts;
    let reservation = held; // the claimed bytes are counted as reserved for this upload
    let handle: fs.FileHandle | undefined;
    try {
      ledger.reserve(Math.max(0, size - held), () => partials.evictOldest());
      reservation = Math.max(size, held);
      await this.ensureDisk(size - Math.min(held, size), name.split('/').length);
      handle = await fs.open(this.parts.tmp.entry(tempName), constants.O_RDWR | constants.O_NOFOLLOW);
      const algorithm = options.algorithm ?? 'sha256';
      const key = probeKey(name, size, algorithm);
      const probe = this.probed.get(key);
      this.probed.delete(key);
      // Continue the hash computed by the probe when the partial is unchanged since.
      let offset = Math.min(held, size);
      let hasher: Hasher;
      if (probe && probe.offset <= offset && probe.expires > this.parts.clock.now()) {
        offset = probe.offset;
        hasher = probe.hasher;
      } else {
        hasher = await hashPrefix(handle, offset, algorithm);
      }
      await cutToPrefix(handle, offset);
      return new Upload(this, this.parts, name, options, handle, tempName, offset, hasher, reservation);
    } catch (error) {
      await handle?.close();
      await fs.rm(this.parts.tmp.entry(tempName), { force: true });
      ledger.release(reservation);
      throw mapFsError(error);
    }
  }

  /**
   * Refuses an upload of `bytes` more (and up to `folders` new folders) that the disk cannot
   * take besides what uploads in progress were promised, after evicting kept partials, oldest
   * first: interrupted uploads never starve fresh ones.
   */
  private async ensureDisk(bytes: number, folders: number): Promise<void> {
    const { partials, root } = this.parts;
    for (;;) {
      let promised = 0;
      for (const upload of this.active) promised += upload.unwritten;
      const free = await freeSpace(root.top.path);
      const fits = (bytes === 0 || bytes + promised <= free.bytes) && folders + 1 <= free.files;
      if (fits) return;
      // A few at a time (statfs is not free), then look again once their files are gone.
      let evicted = 0;
      while (evicted < 8 && partials.evictOldest()) evicted++;
      if (evicted === 0) break;
      await partials.settled();
    }
    throw new FerryError('NO_SPACE', `the server has less than ${bytes} bytes of free disk space`);
  }

  /**
   * How much of an interrupted upload of (name, size) is kept, and the digest of those bytes.
   * The hash state is remembered briefly so a resume right after does not reread them.
   */
  async probe(name: string, size: number, algorithm: DigestAlgorithm): Promise<{ offset: number; digest: Buffer }> {
    checkName(name);
    const { partials, ledger, clock } = this.parts;
    if (partials.sizeOf(name, size) === 0) return { offset: 0, digest: EMPTY_DIGEST[algorithm] };
    const claimed = await partials.claim(name, size);
    if (claimed === undefined) return { offset: 0, digest: EMPTY_DIGEST[algorithm] };
    const offset = Math.min(claimed.held, size);
    try {
      const handle = await fs.open(this.parts.tmp.entry(claimed.tempName), constants.O_RDONLY | constants.O_NOFOLLOW);
      let hasher: Hasher;
      try {
        hasher = await hashPrefix(handle, offset, algorithm);
      } finally {
        await handle.close();
      }
      if (this.probed.size >= PROBE_CACHE_MAX) this.probed.clear();
      this.probed.set(probeKey(name, size, algorithm), { offset, hasher, expires: clock.now() + PROBE_CACHE_MS });
      return { offset, digest: hasher.peek() };
    } finally {
      ledger.release(claimed.held);
      await partials.keep(claimed.tempName, name, size, claimed.held);
    }
  }

  /** Moves a finished temporary into place under the name lock (see Upload.commit). */
  async commit(name: string, tempName: string, options: UploadOptions, digest: Buffer, stats: Stats): Promise<{ entry: StoredEntry; replaced: number }> {
    const { root, locks, syncs, digests } = this.parts;
    const components = name.split('/');
    const leaf = components.pop()!;
    return locks.with(name, async () => {
      const created: string[] = [];
      const folder = await root.openFolder(components, {
        create: true,
        name,
        // A new folder's entry must survive a power cut too: its parent is synced.
        onCreating: (parent, made) => {
          const creation = this.parts.fsync ? syncs.creating(made, parent) : { made: async () => undefined, notMade: () => undefined };
          return {
            made: () => {
              created.push(made);
              return creation.made();
            },
            notMade: creation.notMade,
          };
        },
      });
      if (folder === undefined) throw new FerryError('CONFLICT', `"${name}": its folder was removed while the file was being stored`);
      try {
        const { leaf: finalLeaf, existing } = pickLeaf(folder, leaf, name, options);
        const finalName = components.length === 0 ? finalLeaf : `${components.join('/')}/${finalLeaf}`;
        if (existing?.isDirectory()) throw new FerryError('CONFLICT', `"${finalName}" is a folder`);
        const mtimeMs = Math.trunc(stats.mtimeMs);
        // Record first: if we crash between the two renames the record names the wrong inode
        // and is ignored, so a stale digest can never be served.
        await digests.write(finalName, { digests: { [options.algorithm ?? 'sha256']: digest }, size: stats.size, mtimeMs, ino: stats.ino });
        try {
          await fs.rename(this.parts.tmp.entry(tempName), folder.entry(finalLeaf));
        } catch (error) {
          if (isCode(error, 'EISDIR') || isCode(error, 'ENOTEMPTY')) throw new FerryError('CONFLICT', `"${finalName}" is a folder`);
          if (isCode(error, 'ENOENT')) throw new FerryError('CONFLICT', `"${finalName}": its folder was removed while the file was being stored`);
          throw error;
        }
        if (this.parts.fsync) {
          await syncs.sync(folder);
          await syncs.pathDurable(components);
        }
        const replaced = existing?.isFile() ? existing.size : 0;
        return { entry: { name: finalName, kind: 'file', size: stats.size, mtimeMs, digest }, replaced };
      } catch (error) {
        await folder.close();
        // A refused commit leaves no folder it made behind.
        for (const made of created.reverse()) {
          const parts = made.split('/');
          const last = parts.pop()!;
          const parent = await root.openFolder(parts).catch(() => undefined);
          if (!parent) break;
          const removed = await fs.rmdir(parent.entry(last)).then(() => true, () => false);
          await parent.close();
          if (!removed) break;
        }
        throw error;
      } finally {
        await folder.close();
      }
    });
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
  /** The algorithm this upload is verified in. */
  readonly algorithm: DigestAlgorithm;
  /** Digest of the first `offset` bytes. */
  readonly prefixDigest: Buffer;

  constructor(
    private readonly uploads: Uploads,
    private readonly parts: StoreParts,
    readonly name: string,
    private readonly options: UploadOptions,
    private readonly handle: fs.FileHandle,
    private readonly tempName: string,
    /** Bytes already held from an interrupted upload; the body continues from here. */
    readonly offset: number,
    prefixHasher: Hasher | undefined,
    /** Bytes of space reserved for this upload (its whole eventual size). */
    private reservation: number,
  ) {
    // BLAKE3 hashes on the event loop (faster than handing bytes to a thread). A large SHA-256
    // upload (protocol 1-3 clients, the HTTP door) hashes on a thread: without SHA extensions
    // SHA-256 runs at 0.2-0.3 GB/s and would bound the upload on the event loop.
    this.algorithm = options.algorithm ?? 'sha256';
    this.prefixDigest = prefixHasher ? prefixHasher.peek() : EMPTY_DIGEST[this.algorithm];
    // Unknown sizes (raw ingest, chunked bodies) stay inline, as small uploads mostly are:
    // a thread's round trip per upload would cost more than it saves.
    const digester = prefixHasher ? new InlineDigester(prefixHasher) : createDigester(this.algorithm, options.size === undefined ? 0 : options.size - offset);
    this.sink = new FileSink(handle, offset, digester, parts.fsync ? { syncEvery: SYNC_EVERY, maxUnsynced: MAX_UNSYNCED } : {});
    uploads.active.add(this);
  }

  /** Bytes reserved but not yet written (promised room on the disk). */
  get unwritten(): number {
    return Math.max(0, this.reservation - this.offset - this.sink.bytes);
  }

  /**
   * Returns false when the caller should pause its source until `sink.onDrain`. `release` is
   * called once the chunk's memory is no longer needed (written, dropped, or refused here).
   */
  write(chunk: Buffer, release?: () => void): boolean {
    try {
      this.checkGrowth(chunk.length);
    } catch (error) {
      release?.();
      throw error;
    }
    return this.sink.write(chunk, release);
  }

  /** Refuses bytes past the size limit or the quota; reserves room as a chunked upload grows. */
  private checkGrowth(length: number): void {
    const total = this.offset + this.sink.bytes + length;
    const { maxFileSize, ledger, partials } = this.parts;
    if (total > maxFileSize) {
      throw new FerryError('TOO_LARGE', `upload is over the server's limit of ${maxFileSize} bytes`);
    }
    if (total > this.reservation) {
      // Chunked (or longer than declared): reserve as it grows, evicting partials if need be.
      const step = Math.max(total - this.reservation, Math.min(RESERVE_STEP, maxFileSize - this.reservation));
      const grow = ledger.fits(step) ? step : total - this.reservation;
      try {
        ledger.reserve(grow, () => partials.evictOldest());
      } catch {
        throw new FerryError('QUOTA', `upload is over the server's quota of ${ledger.quota} bytes`);
      }
      this.reservation += grow;
    }
  }

  /** Publishes the file if it has the expected size and digest (in this upload's algorithm). */
  async commit(expected: { size?: number; digest?: Buffer }): Promise<StoredEntry> {
    this.done = true;
    return this.parts.activity.track(() => this.commitNow(expected)).catch(async (error: unknown) => {
      await this.discard(); // the store closed first
      throw error;
    });
  }

  private async commitNow(expected: { size?: number; digest?: Buffer }): Promise<StoredEntry> {
    try {
      const { size, digest } = await this.sink.finish();
      if (expected.size !== undefined && size !== expected.size) {
        throw new FerryError('INTEGRITY', `received ${size} bytes but ${expected.size} were declared`);
      }
      if (expected.digest !== undefined && !expected.digest.equals(digest)) {
        throw new FerryError('INTEGRITY', `${this.algorithm} mismatch: the bytes received are not the bytes sent`);
      }
      // The client's modification time (put -p), set before the sync so it is as durable as the bytes.
      if (this.options.mtimeMs !== undefined) await this.handle.utimes(new Date(), mtimeSeconds(this.options.mtimeMs));
      if (this.parts.fsync) await this.handle.sync();
      const stats = await this.handle.stat();
      await this.handle.close();
      const { entry, replaced } = await this.uploads.commit(this.name, this.tempName, this.options, digest, stats);
      this.parts.ledger.storedChanged(stats.size - replaced);
      this.finished();
      return entry;
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
    await this.parts.activity.track(() => this.abortNow(keepPartial)).catch(() => this.discard());
  }

  private async abortNow(keepPartial: boolean): Promise<void> {
    const size = this.options.size;
    if (keepPartial && size !== undefined && this.offset + this.sink.bytes > 0) {
      try {
        await this.sink.finish();
        await this.handle.close();
        const held = this.offset + this.sink.bytes;
        this.finished();
        await this.parts.partials.keep(this.tempName, this.name, size, held);
        return;
      } catch {
        // could not keep it: fall through and discard
      }
    }
    await this.discard();
  }

  /** Releases this upload's reservation (once). */
  private finished(): void {
    this.parts.ledger.release(this.reservation);
    this.reservation = 0;
    this.uploads.active.delete(this);
  }

  private async discard(): Promise<void> {
    this.finished();
    await this.sink.abort(); // also ends a hashing thread's stream, which would keep the process alive
    await this.handle.close().catch(() => undefined);
    if (this.discarded) return;
    this.discarded = true;
    await fs.rm(this.parts.tmp.entry(this.tempName), { force: true }).catch(() => undefined);
  }

  private discarded = false;
}
