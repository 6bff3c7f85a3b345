import { createHash, type Hash } from 'node:crypto';
import { FerryError } from '../../errors.js';
import { createHasher, EMPTY_DIGEST, type DigestAlgorithm, type Hasher } from '../../io/digest.js';
import { createDigester, type Digester } from '../../io/digester.js';
import type { StoreUpload, UploadSink } from '../backend.js';
import type { StoredEntry, UploadOptions } from '../types.js';
import type { Bucket } from './bucket.js';
import type { FileMeta, Keys } from './keys.js';
import { heldBy, type PartialRecord, type S3Partials } from './partials.js';

/**
 * Part buffers per upload, and so parts uploading at once: one uploads while the other fills,
 * and when both are full both upload (writes pause until one is back). The upload's memory is
 * these buffers and the rest of at most one read waiting for a buffer (see `waiting`).
 */
const PART_BUFFERS = 2;
/**
 * Bytes handed to the other digest's thread, not yet hashed, at which writes pause: under the
 * digester's own mark (DIGEST_HIGH_WATER, 6 MiB), as the thread keeps up at a third of it. Not
 * below its low-water mark + one batch (3 MiB), or onCapacity would wake writes too early.
 */
const DIGEST_WINDOW = 3 * 1024 * 1024;
/**
 * Parts finished between two writes of a kept partial's record while an upload runs (each write
 * is a PutObject: one per part doubled the requests of a large upload). A cut or aborted upload
 * writes its record at once; a server killed outright loses at most these parts' progress.
 */
const RECORD_EVERY_PARTS = 8;
/** S3 allows 10,000 parts; a little is kept spare. */
const MAX_PARTS = 9_900;

export interface S3UploadOptions extends UploadOptions {
  /** The name's checks (folder, files on the way) were left to the commit. */
  checkAtCommit?: boolean;
  /** What a batch's survey found of the name's place (see S3Store.storeBatch), instead of asking again. */
  place?: NamePlace;
}

/** Whether a folder has a name, and the first file on its way ("a" of "a/b"), as found once for a batch. */
export interface NamePlace {
  folder: boolean;
  fileOnTheWay: string | undefined;
}

/** What an upload needs of its store. */
export interface UploadContext {
  bucket: Bucket;
  keys: Keys;
  partials: S3Partials;
  /** Smallest part (and the largest file sent in one PutObject). */
  partSize: number;
  maxFileSize: number;
  /** Publishes a verified file under its name (no-clobber unless overwrite); see S3Store.publish. */
  publish(name: string, options: S3UploadOptions, meta: FileMeta, body: Buffer | undefined): Promise<StoredEntry>;
  /** Reads a blob back and hashes it (a resumed upload's verification). */
  hashBlob(key: string): Promise<{ size: number; digests: Record<DigestAlgorithm, Buffer> }>;
  /** An upload of undeclared size has grown to `total` bytes: reserves quota room for them or throws QUOTA. */
  grow(upload: S3Upload, total: number): void;
  done(upload: S3Upload): void;
}

/** A multipart upload under way: its blob, id, and the parts finished so far. */
interface Multipart {
  blob: string;
  uploadId: Promise<string>;
  parts: ({ number: number; etag: string } | undefined)[];
}

/**
 * One upload to the bucket. Bytes are copied into part buffers and hashed (in the session's
 * algorithm and the other one, so every file records both). A file that fits one part is
 * sent with one PutObject when committed; a larger one goes as a multipart upload to a
 * private blob through two part buffers (up to two parts in flight), and the record of a kept
 * partial is updated after each part (a resume through another server continues it). Nothing is
 * visible under the name until `commit` has checked size and digest and published it.
 */
export class S3Upload implements StoreUpload, UploadSink {
  readonly algorithm: DigestAlgorithm;
  readonly offset: number;
  readonly prefixDigest: Buffer;
  private readonly size: number | undefined;
  private readonly partSize: number;
  /** Undefined for a resumed upload: its bytes are hashed again from the blob at commit. */
  private readonly hasher: Hasher | undefined;
  private readonly other: Digester | undefined;
  private part: Buffer | undefined;
  /** The Content-MD5 of the part being filled, hashed as its bytes are copied in. */
  private partMd5: Hash | undefined;
  /** Part buffers back from finished part uploads: a long upload cycles through two. */
  private readonly spare: Buffer[] = [];
  /**
   * The rest of a read that filled a part while the other was uploading, waiting for a buffer:
   * kept as it came (its memory given back through its release once placed), not copied.
   */
  private readonly waiting: { bytes: Buffer; release: (() => void) | undefined }[] = [];
  private waitingBytes = 0;
  private filled = 0;
  private received = 0;
  private multipart: Multipart | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  /** Bytes of the part buffers uploading now. */
  private inFlightBytes = 0;
  private failure: unknown;
  private drainWaiters: (() => void)[] = [];
  private awaitingDigest = false;
  private finished = false;
  /** Prefix digests at part boundaries, by part number (for the partial record). */
  private readonly boundaryDigests = new Map<number, Buffer>();
  private recordWrites: Promise<void> = Promise.resolve();
  /** Parts finishing update the partial record until the upload is committed or discarded. */
  private recording = true;
  /** Parts the last partial record written (or read, when resumed) names. */
  private recordedParts = 0;

  constructor(
    private readonly ctx: UploadContext,
    readonly name: string,
    private readonly options: S3UploadOptions,
    resumed: PartialRecord | undefined,
  ) {
    this.algorithm = options.algorithm ?? 'sha256';
    this.size = options.size;
    if (resumed) {
      this.partSize = resumed.partSize;
      this.offset = heldBy(resumed);
      this.prefixDigest = Buffer.from(resumed.prefixDigest, 'hex');
      this.multipart = { blob: resumed.blob, uploadId: Promise.resolve(resumed.uploadId), parts: [...resumed.parts] };
    } else {
      this.partSize = partSizeFor(ctx.partSize, options.size);
      this.offset = 0;
      this.prefixDigest = EMPTY_DIGEST[this.algorithm];
      this.hasher = createHasher(this.algorithm);
      const other: DigestAlgorithm = this.algorithm === 'sha256' ? 'blake3' : 'sha256';
      this.other = createDigester(other, options.size);
    }
  }

  /** The size the client declared (undefined: sent without one). */
  get declaredSize(): number | undefined {
    return this.size;
  }

  get sink(): UploadSink {
    return this;
  }

  get bytes(): number {
    return this.received;
  }

  /** Bytes of part data held in memory: the buffers (filling, uploading, spare) and a waiting read. */
  get heldBytes(): number {
    return (this.part?.length ?? 0) + this.spare.reduce((sum, b) => sum + b.length, 0) + this.inFlightBytes + this.waitingBytes;
  }

  write(chunk: Buffer, release?: () => void): boolean {
    let kept = false;
    try {
      if (this.failure !== undefined) throw this.failure;
      const total = this.offset + this.received + chunk.length;
      if (total > this.ctx.maxFileSize) throw new FerryError('TOO_LARGE', `upload is over the server's limit of ${this.ctx.maxFileSize} bytes`);
      if (this.size !== undefined && total > this.size) throw new FerryError('INTEGRITY', `received more than the ${this.size} bytes declared`);
      if (this.size === undefined) this.ctx.grow(this, total);
      // Bytes go in order: behind a waiting read, a new one waits too.
      const placed = this.waiting.length === 0 ? this.place(chunk) : 0;
      if (placed < chunk.length) kept = this.keep(chunk.subarray(placed), release);
      this.received += chunk.length;
    } finally {
      if (!kept) release?.();
    }
    return this.ready();
  }

  /** Keeps the rest of a read until a part buffer is free: as it is when the caller says when it is done with it, else a copy. */
  private keep(bytes: Buffer, release: (() => void) | undefined): boolean {
    this.waiting.push({ bytes: release ? bytes : Buffer.from(bytes), release });
    this.waitingBytes += bytes.length;
    return release !== undefined;
  }

  /** Copies bytes into part buffers, sending each full one, while a buffer is free; returns how many it placed. */
  private place(bytes: Buffer): number {
    let at = 0;
    while (at < bytes.length) {
      this.part ??= this.takeBuffer();
      if (this.part === undefined) return at;
      const n = bytes.copy(this.part, this.filled, at);
      // Hashed here, not as the read came: a part's boundary digest must end at its last byte.
      // Both digesters are done with the bytes when update returns (the thread's copies them).
      const copied = this.part.subarray(this.filled, this.filled + n);
      this.hasher?.update(copied);
      this.other?.update(copied);
      if (this.part.length === this.partSize) (this.partMd5 ??= createHash('md5')).update(copied);
      this.filled += n;
      at += n;
      if (this.filled === this.part.length && this.part.length === this.partSize) this.sendPart();
    }
    return at;
  }

  /** A buffer to fill: one back from an upload, or a new one while fewer than PART_BUFFERS are held. */
  private takeBuffer(): Buffer | undefined {
    const spare = this.spare.pop();
    if (spare !== undefined) return spare;
    return this.inFlight.size < PART_BUFFERS ? Buffer.allocUnsafeSlow(this.bufferSize()) : undefined;
  }

  /** Moves waiting reads into the buffer a finished part gave back, releasing each once placed. */
  private placeWaiting(): void {
    try {
      while (this.waiting.length > 0 && this.failure === undefined) {
        const first = this.waiting[0]!;
        const placed = this.place(first.bytes);
        this.waitingBytes -= placed;
        if (placed < first.bytes.length) {
          first.bytes = first.bytes.subarray(placed);
          return;
        }
        this.waiting.shift();
        first.release?.();
      }
    } catch (error) {
      this.failure ??= error;
      this.dropWaiting();
    }
  }

  private dropWaiting(): void {
    for (const { release } of this.waiting.splice(0)) release?.();
    this.waitingBytes = 0;
  }

  /** A part's buffer: small uploads of a declared size get only what they need. */
  private bufferSize(): number {
    if (this.size === undefined || this.multipart !== undefined) return this.partSize;
    return Math.max(1, Math.min(this.partSize, this.size));
  }

  private ready(): boolean {
    const room = this.waiting.length === 0 && (this.part !== undefined || this.spare.length > 0 || this.inFlight.size < PART_BUFFERS);
    return room && (this.other === undefined || this.other.pending < DIGEST_WINDOW);
  }

  onDrain(callback: () => void): void {
    if (this.ready() || this.failure !== undefined) {
      queueMicrotask(callback);
      return;
    }
    this.drainWaiters.push(callback);
    this.awaitDigest();
  }

  /**
   * Wakes the writer once the hashing thread's backlog is under the window. Asked for whenever
   * writes wait and the backlog is over it, also after a waiting read was placed (which adds to
   * the backlog while writes wait: without this, nothing would wake them).
   */
  private awaitDigest(): void {
    if (this.awaitingDigest || this.other === undefined || this.other.pending < DIGEST_WINDOW) return;
    this.awaitingDigest = true;
    this.other.onCapacity(() => {
      this.awaitingDigest = false;
      this.wake();
    });
  }

  private wake(): void {
    if (this.drainWaiters.length === 0) return;
    if (!this.ready() && this.failure === undefined) {
      this.awaitDigest();
      return;
    }
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const waiter of waiters) waiter();
  }

  /** Starts uploading the filled part buffer (starting the multipart upload with the first). */
  private sendPart(): void {
    const buffer = this.part!;
    const body = buffer.subarray(0, this.filled);
    const md5 = this.partMd5?.digest('base64');
    this.part = undefined;
    this.partMd5 = undefined;
    this.filled = 0;
    this.multipart ??= this.startMultipart();
    const multipart = this.multipart;
    const number = multipart.parts.length + 1;
    if (number > MAX_PARTS) throw new FerryError('TOO_LARGE', `upload is over the ${MAX_PARTS} parts of ${this.partSize} bytes the S3 store takes`);
    multipart.parts.push(undefined);
    if (this.hasher) this.boundaryDigests.set(number, this.hasher.peek());
    this.inFlightBytes += buffer.length;
    const sending = (async () => {
      const uploadId = await multipart.uploadId;
      const etag = await this.ctx.bucket.uploadPart(multipart.blob, uploadId, number, body, md5);
      multipart.parts[number - 1] = { number, etag };
      if (buffer.length === this.partSize && this.spare.length < PART_BUFFERS) this.spare.push(buffer);
      this.recordProgress(multipart, uploadId);
    })().catch((error: unknown) => {
      this.failure ??= error;
    });
    const tracked = sending.finally(() => {
      this.inFlight.delete(tracked);
      this.inFlightBytes -= buffer.length;
      this.placeWaiting();
      this.wake();
    });
    this.inFlight.add(tracked);
  }

  private startMultipart(): Multipart {
    const blob = this.ctx.keys.newBlob();
    const uploadId = this.ctx.bucket.createMultipart(blob);
    uploadId.catch(() => undefined); // seen by the parts that wait for it
    return { blob, uploadId, parts: [] };
  }

  /**
   * Writes the partial record for the parts finished in order so far (kept if the upload is cut):
   * after the first part, then every RECORD_EVERY_PARTS parts, and when `final`, whatever is new.
   */
  private recordProgress(multipart: Multipart, uploadId: string, final = false): void {
    if (this.size === undefined || !this.recording) return;
    let done = 0;
    while (done < multipart.parts.length && multipart.parts[done] !== undefined) done++;
    const digest = done === 0 ? undefined : this.boundaryDigests.get(done);
    if (digest === undefined && done > this.resumedParts()) return;
    if (done <= this.recordedParts) return;
    if (!final && this.recordedParts > this.resumedParts() && done - this.recordedParts < RECORD_EVERY_PARTS) return;
    this.recordedParts = done;
    const record: PartialRecord = {
      name: this.name,
      size: this.size,
      blob: multipart.blob,
      uploadId,
      partSize: this.partSize,
      parts: multipart.parts.slice(0, done) as { number: number; etag: string }[],
      algorithm: this.algorithm,
      prefixDigest: (digest ?? this.prefixDigest).toString('hex'),
      updatedAt: this.ctx.partials.wallNow(),
    };
    // Records are written one after another: the last one written is the furthest.
    this.recordWrites = this.recordWrites.then(() => this.ctx.partials.write(record)).catch(() => undefined);
  }

  private resumedParts(): number {
    return this.hasher ? 0 : Math.ceil(this.offset / this.partSize);
  }

  /** Waits for every part in flight; throws the first failure. */
  private async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
    await this.recordWrites;
    if (this.failure !== undefined) throw this.failure;
  }

  async commit(expected: { size?: number; digest?: Buffer }): Promise<StoredEntry> {
    this.finished = true;
    this.recording = false;
    try {
      const size = this.offset + this.received;
      if (expected.size !== undefined && size !== expected.size) {
        throw new FerryError('INTEGRITY', `received ${size} bytes but ${expected.size} were declared`);
      }
      const mtimeMs = Math.trunc(this.options.mtimeMs ?? Date.now());
      if (this.multipart === undefined) {
        const body = this.part?.subarray(0, this.filled) ?? Buffer.alloc(0);
        const digests = await this.digests();
        this.check(digests, expected.digest);
        this.part = undefined;
        return await this.ctx.publish(this.name, this.options, { size, mtimeMs, digests }, body);
      }
      // A read still waiting for a buffer gets one as soon as a part is back.
      while (this.waiting.length > 0 && this.failure === undefined && this.inFlight.size > 0) await Promise.race(this.inFlight);
      if (this.filled > 0 || this.multipart.parts.length === 0) this.sendPart();
      await this.settle();
      const multipart = this.multipart;
      const uploadId = await multipart.uploadId;
      await this.ctx.bucket.completeMultipart(multipart.blob, uploadId, multipart.parts as { number: number; etag: string }[]);
      // The record stays until the file is published: if this server dies in between, the sweep
      // that expires the record deletes the finished blob no name points to.
      try {
        let digests: Record<DigestAlgorithm, Buffer>;
        if (this.hasher) {
          digests = await this.digests();
        } else {
          // Resumed: parts came from other connections (maybe other servers); hash them all again.
          const read = await this.ctx.hashBlob(multipart.blob);
          if (read.size !== size) throw new FerryError('INTEGRITY', `the S3 store holds ${read.size} bytes of ${size}`);
          digests = read.digests;
        }
        this.check(digests, expected.digest);
        const entry = await this.ctx.publish(this.name, this.options, { size, mtimeMs, digests, blob: multipart.blob }, undefined);
        if (this.size !== undefined) await this.ctx.partials.forget(this.name, this.size).catch(() => undefined);
        return entry;
      } catch (error) {
        await this.ctx.bucket.delete(multipart.blob).catch(() => undefined);
        throw error;
      }
    } catch (error) {
      await this.discard();
      throw error;
    } finally {
      this.ctx.done(this);
    }
  }

  private async digests(): Promise<Record<DigestAlgorithm, Buffer>> {
    const own = this.hasher!.peek();
    const other = await this.other!.digest();
    return this.algorithm === 'sha256' ? { sha256: own, blake3: other } : { blake3: own, sha256: other };
  }

  private check(digests: Record<DigestAlgorithm, Buffer>, expected: Buffer | undefined): void {
    if (expected !== undefined && !expected.equals(digests[this.algorithm])) {
      throw new FerryError('INTEGRITY', `${this.algorithm} mismatch: the bytes received are not the bytes sent`);
    }
  }

  /** Gives up; with `keepPartial`, the parts already in the bucket stay for a resume. */
  async abort(keepPartial = false): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    this.other?.abort(); // a hashing thread's stream would keep the process alive
    this.dropWaiting(); // lost with the part being filled
    try {
      const keep = keepPartial && this.size !== undefined && this.multipart !== undefined;
      if (keep) {
        await this.settle().catch(() => undefined);
        const uploadId = await this.multipart!.uploadId.catch(() => undefined);
        if (uploadId !== undefined) this.recordProgress(this.multipart!, uploadId, true);
        await this.recordWrites;
        // The part being filled is lost; the record names the parts finished in order.
        if (this.multipart!.parts.some((p) => p !== undefined)) return;
      }
      await this.discard();
    } finally {
      this.ctx.done(this);
    }
  }

  private async discard(): Promise<void> {
    this.recording = false;
    this.other?.abort();
    this.part = undefined;
    this.partMd5 = undefined;
    this.dropWaiting();
    await Promise.allSettled([...this.inFlight]);
    await this.recordWrites;
    const multipart = this.multipart;
    if (multipart === undefined) return;
    const uploadId = await multipart.uploadId.catch(() => undefined);
    if (uploadId !== undefined) await this.ctx.bucket.abortMultipart(multipart.blob, uploadId).catch(() => undefined);
    if (this.size !== undefined) await this.ctx.partials.forget(this.name, this.size).catch(() => undefined);
  }
}

/** The part size for a declared size: at least `min`, enough that the file fits MAX_PARTS parts. */
function partSizeFor(min: number, size: number | undefined): number {
  if (size === undefined) return min;
  const needed = Math.ceil(size / MAX_PARTS);
  const mib = 1024 * 1024;
  return Math.max(min, Math.ceil(needed / mib) * mib);
}
