import type { promises as fs } from 'node:fs';
import { DIGEST_HIGH_WATER, InlineDigester, type Digester } from './digester.js';


const HIGH_WATER = 4 * 1024 * 1024;
const LOW_WATER = 1024 * 1024;
/** writev takes at most IOV_MAX (1024 on Linux) buffers per call. */
const MAX_BATCH_BUFFERS = 1024;

/**
 * Hashes and writes a byte stream to an open file, batching queued chunks into one writev so
 * a burst of small socket reads costs one system call. `write` returns false when the queue
 * is over the high-water mark; the caller pauses its source until `onDrain` fires.
 * Chunks are kept by reference until written, so callers must not reuse them.
 */
export class FileSink {
  private readonly digester: Digester;
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private position: number;
  private received = 0;
  private flushing: Promise<void> | undefined;
  private failure: unknown;
  private drainWaiter: (() => void) | undefined;

  constructor(
    private readonly handle: fs.FileHandle,
    startAt = 0,
    digester: Digester = new InlineDigester(),
  ) {
    this.position = startAt;
    this.digester = digester;
  }

  /** Bytes accepted so far (written or queued). */
  get bytes(): number {
    return this.received;
  }

  write(chunk: Buffer): boolean {
    if (this.failure !== undefined) return true; // the failure surfaces from finish()
    this.digester.update(chunk);
    this.received += chunk.length;
    this.queue.push(chunk);
    this.queuedBytes += chunk.length;
    this.flushing ??= this.flush();
    return this.queuedBytes < HIGH_WATER && this.digester.pending < DIGEST_HIGH_WATER;
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
        if (batch === this.queue) this.queue = [];
        let length = 0;
        for (const b of batch) length += b.length;
        await writeFully(this.handle, batch, length, this.position);
        this.position += length;
        this.queuedBytes -= length;
        this.releaseDrain();
      }
    } catch (error) {
      this.failure = error;
      this.queue = [];
      this.queuedBytes = 0;
      this.releaseDrain();
    } finally {
      this.flushing = undefined;
    }
  }

  private releaseDrain(): void {
    if (this.drainWaiter && (this.queuedBytes < LOW_WATER || this.failure !== undefined)) {
      const waiter = this.drainWaiter;
      this.drainWaiter = undefined;
      waiter();
    }
  }

  /** Waits for every queued byte to reach the file; returns the sha256 of all bytes written. */
  async finish(): Promise<{ size: number; sha256: Buffer }> {
    while (this.flushing) await this.flushing;
    if (this.failure !== undefined) throw this.failure;
    return { size: this.position, sha256: await this.digester.digest() };
  }

  /** Waits for in-flight writes so the file can be closed and removed safely. */
  async settle(): Promise<void> {
    this.queue = [];
    while (this.flushing) await this.flushing;
  }

  /**
   * Gives up (a failed transfer): releases the digester, which may hold a hashing thread
   * that would keep the process alive, and waits for in-flight writes like `settle`.
   */
  async abort(): Promise<void> {
    this.digester.abort();
    await this.settle();
  }
}

async function writeFully(handle: fs.FileHandle, buffers: Buffer[], length: number, position: number): Promise<void> {
  let { bytesWritten } = await handle.writev(buffers, position);
  if (bytesWritten === length) return;
  // Short writes are rare (signals, full disks); finish byte-exact with plain writes.
  const whole = Buffer.concat(buffers, length);
  while (bytesWritten < length) {
    const result = await handle.write(whole, bytesWritten, length - bytesWritten, position + bytesWritten);
    bytesWritten += result.bytesWritten;
  }
}
