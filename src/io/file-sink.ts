import { writeSync, type promises as fs } from 'node:fs';
import { DIGEST_HIGH_WATER, type Digester } from './digester.js';
import { processWriteGate, type InlineWriteGate } from './inline-writes.js';


/** Queued bytes after which `write` asks the source to pause, and when it may go on. */
const HIGH_WATER = 4 * 1024 * 1024;
const LOW_WATER = 1024 * 1024;
/** Adjacent chunks are joined up to this size (a read slab's). */
const MAX_JOINED = 1024 * 1024;
/** writev takes at most IOV_MAX (1024 on Linux) buffers per call. */
const MAX_BATCH_BUFFERS = 1024;

export interface FileSinkOptions {
  /**
   * Start an fdatasync in the background each time this many more bytes were written, so the
   * final fsync finds little left to write (0, the default: never; for stores without fsync).
   */
  syncEvery?: number;
  /**
   * Most bytes written past the last finished background sync before writing pauses for it
   * (default 4 × syncEvery): bounds the dirty pages, and so the final fsync, when the disk is
   * slower than the network. The pause reaches the source through `write`/`onDrain`.
   */
  maxUnsynced?: number;
  /**
   * When chunks may be written synchronously on the event loop (see inline-writes.ts); false:
   * always through the thread pool. Default: the process-wide gate.
   */
  inlineWrites?: InlineWriteGate | false;
}

/**
 * Hashes and writes a byte stream to an open file: chunks that follow each other in memory are
 * joined first (see `held`), then written at once on the event loop while the write gate allows
 * it and nothing is queued; otherwise through the thread pool, batching queued chunks into one
 * writev so a burst of small socket reads costs one system call.
 * `write` returns false when the queue is over the high-water mark; the caller pauses its
 * source until `onDrain` fires. A queued chunk is kept by reference until written (its
 * `release` says when), so callers must not reuse it before.
 */
export class FileSink {
  private readonly digester: Digester;
  private queue: Buffer[] = [];
  /** Per queued chunk, what to call once it is written (or dropped): its memory may be reused. */
  private releases: (ReleaseChunk | undefined)[] = [];
  private queuedBytes = 0;
  private position: number;
  private received = 0;
  private flushing: Promise<void> | undefined;
  private failure: unknown;
  private drainWaiter: (() => void) | undefined;
  /**
   * The last chunk taken, not yet hashed or written, and what to call once it is: a chunk
   * that follows it in the same memory joins it. TLS delivers 16 KiB records into one read
   * slab back to back, many in one turn of the event loop; joined, a 1 GiB download took
   * 1,998 writes instead of 65,536.
   */
  private held: Buffer | undefined;
  private heldReleases: (ReleaseChunk | undefined)[] = [];
  private endOfTurn: NodeJS.Immediate | undefined;
  private readonly syncEvery: number;
  private readonly maxUnsynced: number;
  private readonly gate: InlineWriteGate | undefined;

  /** The background fdatasync in flight (at most one); it never rejects (see startSync). */
  private syncing: Promise<void> | undefined;
  /** File position the last background sync started at / the last one that finished covered. */
  private syncStartedAt: number;
  private syncedTo: number;
  private syncsDone = 0;
  /** Set by finish/settle: no new background syncs (the final fsync or a close follows). */
  private syncsStopped = false;

  constructor(
    private readonly handle: fs.FileHandle,
    startAt = 0,
    digester: Digester,
    options: FileSinkOptions = {},
  ) {
    this.position = startAt;
    this.digester = digester;
    this.syncEvery = options.syncEvery ?? 0;
    this.maxUnsynced = options.maxUnsynced ?? 4 * this.syncEvery;
    this.gate = options.inlineWrites === false ? undefined : (options.inlineWrites ?? processWriteGate);

    this.syncStartedAt = startAt;
    this.syncedTo = startAt;
  }

  /** Background fdatasyncs finished so far. */
  get backgroundSyncs(): number {
    return this.syncsDone;
  }

  /** Bytes accepted so far (written or queued). */
  get bytes(): number {
    return this.received;
  }

  /**
   * Queues `chunk`; `release` is called once it is written or dropped (a read buffer may then
   * be reused). Returns false when the caller should pause until `onDrain`.
   */
  write(chunk: Buffer, release?: ReleaseChunk): boolean {
    if (this.failure !== undefined) {
      release?.();
      return true; // the failure surfaces from finish()
    }
    this.received += chunk.length;
    const held = this.held;
    if (held !== undefined && held.buffer === chunk.buffer && held.byteOffset + held.length === chunk.byteOffset && held.length + chunk.length <= MAX_JOINED) {
      // The next bytes of the stream sit right after the held ones: one longer view, no copy.
      this.held = Buffer.from(held.buffer, held.byteOffset, held.length + chunk.length);
      this.heldReleases.push(release);
      return this.accepting();
    }
    this.pushHeld();
    this.held = chunk;
    this.heldReleases = [release];
    // Held for this turn of the event loop only: the reads of one turn join, and a stalled
    // stream still finds every byte it delivered written.
    this.endOfTurn ??= setImmediate(() => {
      this.endOfTurn = undefined;
      this.pushHeld();
    });
    return this.accepting();
  }

  private accepting(): boolean {
    return this.queuedBytes < HIGH_WATER && this.digester.pending < DIGEST_HIGH_WATER;
  }

  /** Hashes the held bytes and writes them (inline) or queues them (thread pool). */
  private pushHeld(): void {
    const chunk = this.held;
    if (chunk === undefined) return;
    const releases = this.heldReleases;
    this.held = undefined;
    this.heldReleases = [];
    if (this.failure !== undefined) {
      for (const release of releases) release?.();
      return;
    }
    this.digester.update(chunk);
    if (this.mayWriteInline()) {
      this.writeInline(chunk);
      for (const release of releases) release?.();
      return;
    }
    this.queue.push(chunk);
    this.releases.push(releases.length === 1 ? releases[0] : () => releases.forEach((release) => release?.()));
    this.queuedBytes += chunk.length;
    this.flushing ??= this.flush();
  }

  /** Inline only in order (nothing queued or being written) and within the unsynced bound. */
  private mayWriteInline(): boolean {
    if (this.gate === undefined || this.flushing !== undefined || this.queue.length > 0) return false;
    if (this.syncing !== undefined && this.position - this.syncedTo > this.maxUnsynced) return false;
    return this.gate.open;
  }

  private writeInline(chunk: Buffer): void {
    try {
      const fd = this.handle.fd;
      const position = this.position;
      this.gate!.run(() => {
        for (let done = 0; done < chunk.length; ) {
          const written = writeSync(fd, chunk, done, chunk.length - done, position + done);
          if (written === 0) throw new Error(`wrote 0 of ${chunk.length - done} bytes`);
          done += written;
        }
      });
      this.position += chunk.length;
      this.startSyncIfDue();
    } catch (error) {
      this.failure = error; // surfaces from finish(); later chunks are dropped
    }
  }

  /** Calls `callback` once both the write queue and the hashing have caught up. */
  onDrain(callback: () => void): void {
    const writesCaughtUp = (): void => {
      if (this.queuedBytes < LOW_WATER || this.failure !== undefined) this.digester.onCapacity(callback);
      else this.drainWaiter = () => this.digester.onCapacity(callback);
    };
    writesCaughtUp();
  }

  private async flush(): Promise<void> {
    try {
      while (this.queue.length > 0 && this.failure === undefined) {
        const batch = this.queue.length > MAX_BATCH_BUFFERS ? this.queue.splice(0, MAX_BATCH_BUFFERS) : this.queue;
        const releases = batch === this.queue ? this.releases : this.releases.splice(0, batch.length);
        if (batch === this.queue) {
          this.queue = [];
          this.releases = [];
        }
        let length = 0;
        for (const b of batch) length += b.length;
        try {
          await writeFully(this.handle, batch, length, this.position);
        } finally {
          for (const release of releases) release?.();
        }
        this.position += length;
        this.queuedBytes -= length;
        this.startSyncIfDue();
        this.releaseDrain();
        // Writing outran the disk: wait for the sync in flight (the queue fills meanwhile and
        // write() asks the source to pause).
        while (this.syncing && this.position - this.syncedTo > this.maxUnsynced) await this.syncing;
      }
      if (this.failure !== undefined) this.dropQueue();
    } catch (error) {
      this.failure = error;
      this.dropQueue();
    } finally {
      this.flushing = undefined;
    }
  }

  /** pushHeld for the last time: no end-of-turn flush is left pending to keep the event loop alive. */
  private flushHeld(): void {
    if (this.endOfTurn !== undefined) clearImmediate(this.endOfTurn);
    this.endOfTurn = undefined;
    this.pushHeld();
  }

  private dropHeld(): void {
    if (this.endOfTurn !== undefined) clearImmediate(this.endOfTurn);
    this.endOfTurn = undefined;
    const releases = this.heldReleases;
    this.held = undefined;
    this.heldReleases = [];
    for (const release of releases) release?.();
  }

  private dropQueue(): void {
    this.releaseQueued();
    this.queue = [];
    this.queuedBytes = 0;
    this.releaseDrain();
  }

  private startSyncIfDue(): void {
    if (this.syncEvery <= 0 || this.syncing || this.syncsStopped || this.failure !== undefined) return;
    if (this.position - this.syncStartedAt < this.syncEvery) return;
    const upTo = this.position;
    this.syncStartedAt = upTo;
    this.syncing = this.handle
      .datasync()
      .then(
        () => {
          this.syncedTo = upTo;
          this.syncsDone++;
        },
        (error: unknown) => {
          // A failed writeback may not be reported again by the final fsync: keep it for finish().
          // The write loop sees it and drops the queue (it may be mid-writev now).
          this.failure ??= error;
          this.releaseDrain();
        },
      )
      .finally(() => {
        this.syncing = undefined;
        this.startSyncIfDue(); // writing went on meanwhile
      });
  }

  private async syncsSettled(): Promise<void> {
    this.syncsStopped = true;
    while (this.syncing) await this.syncing;
  }

  private releaseQueued(): void {
    const releases = this.releases;
    this.releases = [];
    for (const release of releases) release?.();
  }

  private releaseDrain(): void {
    if (this.drainWaiter && (this.queuedBytes < LOW_WATER || this.failure !== undefined)) {
      const waiter = this.drainWaiter;
      this.drainWaiter = undefined;
      waiter();
    }
  }

  /**
   * Waits for every queued byte to reach the file (and any background sync to end; its error,
   * like a write's, is thrown here); returns the digest of all bytes written.
   */
  async finish(): Promise<{ size: number; digest: Buffer }> {
    this.flushHeld();
    while (this.flushing) await this.flushing;
    await this.syncsSettled();
    if (this.failure !== undefined) throw this.failure;
    return { size: this.position, digest: await this.digester.digest() };
  }

  /** Waits for in-flight writes and syncs so the file can be closed and removed safely. */
  async settle(): Promise<void> {
    this.dropHeld();
    this.releaseQueued();
    this.queue = [];
    while (this.flushing) await this.flushing;
    await this.syncsSettled();
  }

  /**
   * Gives up (a failed transfer): releases the digester, which may hold a hashing thread
   * that would keep the process alive, and waits for in-flight writes like `settle`. With
   * `keepQueued` the bytes already accepted are written first (at most the high-water mark),
   * so a download kept for resuming holds everything that arrived.
   */
  async abort(keepQueued = false): Promise<void> {
    if (keepQueued) {
      this.flushHeld();
      this.digester.abort();
      while (this.flushing) await this.flushing;
      await this.syncsSettled();
      return;
    }
    this.digester.abort();
    await this.settle();
  }
}

export type ReleaseChunk = () => void;

async function writeFully(handle: fs.FileHandle, buffers: Buffer[], length: number, position: number): Promise<void> {
  let written = 0;
  let pending = buffers;
  for (;;) {
    const { bytesWritten } = await handle.writev(pending, position + written);
    written += bytesWritten;
    if (written >= length) return;
    if (bytesWritten === 0) throw new Error(`wrote 0 of ${length - written} bytes`);
    // A short write (seen here on ext4 for multi-MiB batches): go on from the first byte not
    // written, without copying what remains.
    let skip = bytesWritten;
    let index = 0;
    while (skip >= pending[index]!.length) skip -= pending[index++]!.length;
    pending = [pending[index]!.subarray(skip), ...pending.slice(index + 1)];
  }
}
