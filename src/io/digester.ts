import { cpus } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { nodeWorkerThreads } from '../builtins.js';
import { createHasher, digestOf, type DigestAlgorithm, type Hasher } from './digest.js';

/**
 * A streaming digest that may run on another core. SHA-256 costs as much CPU as moving the
 * bytes, so for large transfers it goes to a worker thread, fed in 1 MiB batches; callers
 * respect `pending` (bytes not yet hashed) as backpressure. Small transfers hash inline,
 * where a round trip to the worker would cost more than it saves, and so does BLAKE3 at
 * any size: it hashes faster than the copy into a batch would cost.
 */
export interface Digester {
  update(chunk: Buffer): void;
  /** Bytes handed over but not yet hashed. */
  readonly pending: number;
  /** Calls back once `pending` has fallen under the low-water mark. */
  onCapacity(callback: () => void): void;
  /** Digest of everything so far; the digester is finished afterwards. */
  digest(): Promise<Buffer>;
  /**
   * Gives up without a digest (a failed or refused transfer): releases what it holds (a
   * worker thread's stream, which would otherwise keep the process alive), wakes capacity
   * waiters, and rejects a pending digest(). Idempotent; a no-op once digested.
   */
  abort(): void;
}

export const DIGEST_HIGH_WATER = 6 * 1024 * 1024;
const DIGEST_LOW_WATER = 2 * 1024 * 1024;
const BATCH = 1024 * 1024;
/** From this size on (or when unknown), hashing goes off the event loop. */
export const OFF_THREAD_THRESHOLD = 8 * 1024 * 1024;

/** Inline digester, optionally continuing a hash that already covers a prefix. */
export class InlineDigester implements Digester {
  readonly pending = 0;
  constructor(private readonly hasher: Hasher) {}
  update(chunk: Buffer): void {
    this.hasher.update(chunk);
  }
  onCapacity(callback: () => void): void {
    callback();
  }
  digest(): Promise<Buffer> {
    return Promise.resolve(this.hasher.peek());
  }
  abort(): void {}
}

/** A first chunk up to this size is kept (copied) instead of starting a native BLAKE3 hasher. */
const DEFERRED_FIRST_CHUNK = 64 * 1024;

/**
 * A BLAKE3 hash whose native hasher is made only when a second chunk comes: a body of one
 * small chunk (a small file) is hashed with the one-shot function. Each native hasher holds
 * ~3 KB outside the JS heap until a GC finalizes it, which at thousands of small files a second
 * grew a process by tens of MB (issue 12).
 */
class DeferredHasher implements Hasher {
  private hasher: Hasher | undefined;
  private first: Buffer | undefined;

  constructor(readonly algorithm: DigestAlgorithm) {}

  update(data: Uint8Array): void {
    if (this.hasher === undefined && this.first === undefined && data.length <= DEFERRED_FIRST_CHUNK) {
      this.first = Buffer.from(data); // a copy: the caller may reuse its buffer
      return;
    }
    if (this.hasher === undefined) {
      this.hasher = createHasher(this.algorithm);
      if (this.first !== undefined) this.hasher.update(this.first);
      this.first = undefined;
    }
    this.hasher.update(data);
  }

  peek(): Buffer {
    return this.hasher?.peek() ?? digestOf(this.algorithm, this.first ?? Buffer.alloc(0));
  }
}

/** Picks inline or off-thread hashing for a transfer of `size` bytes (undefined: unknown). */
export function createDigester(algorithm: DigestAlgorithm, size: number | undefined, prefix?: Hasher): Digester {
  if (prefix) return new InlineDigester(prefix);
  if (algorithm === 'blake3') return new InlineDigester(new DeferredHasher(algorithm));
  if (size !== undefined && size < OFF_THREAD_THRESHOLD) return new InlineDigester(createHasher(algorithm));
  if (process.env.FERRY_INLINE_HASH === '1' || cpus().length < 2) return new InlineDigester(createHasher(algorithm));
  return new WorkerDigester(HashPool.shared().take());
}

type FromWorker = { t: 'ack'; id: number; n: number; data: ArrayBuffer } | { t: 'digest'; id: number; digest: Uint8Array } | { t: 'error'; id: number; message: string };

/** One worker thread hashing many streams by id; unref'd so it never keeps a process alive. */
class HashThread {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly streams = new Map<number, WorkerDigester>();
  /** Set once the worker has failed or exited: the pool replaces it. */
  dead = false;

  constructor() {
    // A small heap: the worker only ever holds a few batches.
    // No inherited flags: under `node --input-type=module -e …` they stop the worker from starting.
    this.worker = new (nodeWorkerThreads().Worker)(new URL('./digester-thread.js', import.meta.url), {
      execArgv: [],
      resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 },
    });
    this.worker.on('message', (message: FromWorker) => this.streams.get(message.id)?.receive(message));
    const lost = (error: Error): void => {
      this.dead = true;
      for (const stream of [...this.streams.values()]) stream.fail(error);
      this.streams.clear();
      this.worker.unref();
    };
    this.worker.on('error', lost);
    this.worker.on('exit', () => lost(new Error('the hashing thread exited')));
    // Only streams in progress keep the process alive (unref after the listeners: adding a
    // 'message' listener refs the worker again).
    this.worker.unref();
  }

  open(stream: WorkerDigester): number {
    const id = this.nextId++;
    this.streams.set(id, stream);
    if (this.streams.size === 1) this.worker.ref(); // a digest is owed: stay alive for it
    return id;
  }

  close(id: number): void {
    this.streams.delete(id);
    if (this.streams.size === 0) this.worker.unref();
  }

  post(message: unknown, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(message, transfer);
  }
}

/** Batch buffers handed back by the worker, reused instead of allocating 1 MiB per batch. */
const spareBatches: ArrayBuffer[] = [];
const MAX_SPARE_BATCHES = 16;

function batchBuffer(): Buffer {
  const spare = spareBatches.pop();
  return spare ? Buffer.from(spare) : Buffer.allocUnsafeSlow(BATCH);
}

class HashPool {
  private static instance: HashPool | undefined;
  private readonly threads: HashThread[] = [];
  private turn = 0;

  static shared(): HashPool {
    HashPool.instance ??= new HashPool();
    return HashPool.instance;
  }

  take(): HashThread {
    for (let i = this.threads.length - 1; i >= 0; i--) if (this.threads[i]!.dead) this.threads.splice(i, 1);
    // One thread per spare core is enough: each hashes faster than a socket delivers.
    const size = Math.max(1, Math.min(2, cpus().length - 1));
    if (this.threads.length < size) this.threads.push(new HashThread());
    return this.threads[this.turn++ % this.threads.length]!;
  }
}

class WorkerDigester implements Digester {
  private readonly id: number;
  private staging = batchBuffer();
  private staged = 0;
  private posted = 0;
  private capacityWaiters: (() => void)[] = [];
  private result: { resolve: (digest: Buffer) => void; reject: (error: Error) => void } | undefined;
  private failure: Error | undefined;
  private finished = false;

  constructor(private readonly thread: HashThread) {
    this.id = thread.open(this);
    thread.post({ t: 'open', id: this.id });
  }

  get pending(): number {
    return this.posted + this.staged;
  }

  update(chunk: Buffer): void {
    if (this.failure) return; // the failure surfaces from digest()
    let offset = 0;
    while (offset < chunk.length) {
      const n = chunk.copy(this.staging, this.staged, offset);
      this.staged += n;
      offset += n;
      if (this.staged === BATCH) this.flush();
    }
  }

  private flush(): void {
    if (this.staged === 0) return;
    const whole = this.staging.byteOffset === 0 && this.staging.buffer.byteLength === this.staged;
    const buffer = (whole ? this.staging.buffer : this.staging.buffer.slice(this.staging.byteOffset, this.staging.byteOffset + this.staged)) as ArrayBuffer;
    this.thread.post({ t: 'update', id: this.id, data: buffer }, [buffer]);
    this.posted += this.staged;
    this.staged = 0;
    this.staging = batchBuffer();
  }

  onCapacity(callback: () => void): void {
    if (this.posted < DIGEST_LOW_WATER || this.failure) callback();
    else this.capacityWaiters.push(callback);
  }

  digest(): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    this.flush();
    return new Promise((resolve, reject) => {
      this.result = { resolve, reject };
      this.thread.post({ t: 'digest', id: this.id });
    });
  }

  receive(message: FromWorker): void {
    if (message.t === 'ack') {
      this.posted -= message.n;
      if (message.data.byteLength === BATCH && spareBatches.length < MAX_SPARE_BATCHES) spareBatches.push(message.data);
      if (this.posted < DIGEST_LOW_WATER && this.capacityWaiters.length > 0) {
        const waiters = this.capacityWaiters;
        this.capacityWaiters = [];
        for (const waiter of waiters) waiter();
      }
    } else if (message.t === 'digest') {
      this.finished = true;
      this.thread.close(this.id);
      this.result?.resolve(Buffer.from(message.digest));
    } else {
      this.fail(new Error(message.message));
    }
  }

  abort(): void {
    if (this.finished || this.failure) return;
    this.thread.post({ t: 'drop', id: this.id });
    this.fail(new Error('hashing abandoned'));
  }

  fail(error: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.failure = error;
    this.thread.close(this.id);
    this.result?.reject(error);
    this.result = undefined;
    const waiters = this.capacityWaiters;
    this.capacityWaiters = [];
    for (const waiter of waiters) waiter();
  }
}

/**
 * A digester whose kind is chosen at the first byte, once the transfer's size is known
 * (a download learns it from GET_OK, after its sink was made).
 */
export class DeferredDigester implements Digester {
  private inner: Digester | undefined;
  private expected: number | undefined;
  private aborted = false;

  constructor(
    private readonly algorithm: DigestAlgorithm,
    private readonly prefix?: Hasher,
  ) {}

  /** The number of bytes that will follow. */
  expect(size: number): void {
    this.expected = size;
  }

  private get chosen(): Digester {
    // After abort() nothing may start a worker stream again: late bytes go to a throwaway hash.
    this.inner ??= this.aborted ? new InlineDigester(createHasher('sha256')) : createDigester(this.algorithm, this.expected, this.prefix);
    return this.inner;
  }

  get pending(): number {
    return this.inner?.pending ?? 0;
  }

  update(chunk: Buffer): void {
    this.chosen.update(chunk);
  }

  onCapacity(callback: () => void): void {
    if (this.inner) this.inner.onCapacity(callback);
    else callback();
  }

  digest(): Promise<Buffer> {
    if (this.aborted) return Promise.reject(new Error('hashing abandoned'));
    return this.chosen.digest();
  }

  abort(): void {
    this.aborted = true;
    this.inner?.abort();
  }
}
