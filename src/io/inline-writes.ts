import { systemClock, type Clock } from '../clock.js';

/** One synchronous write slower than this means the kernel is throttling writers. */
const SLOW_WRITE_MS = 20;
/** After a slow write, every sink writes through the thread pool for this long. */
const POOL_FOR_MS = 5_000;

/**
 * Decides whether a file sink may write on the event loop. A write into the page cache takes
 * well under a millisecond per MiB here, less than handing the buffer to the thread pool and
 * back; and on two cores a fourth busy thread (the pool's writer) halved a 1 GiB transfer's
 * speed (bench/RESULTS.md, issue 11). But a synchronous write blocks every other session of
 * the process, and the kernel stalls writers once dirty pages pile up (a slow disk, a full
 * writeback): after one slow write, all sinks go back to the pool for a while.
 */
export class InlineWriteGate {
  private poolUntil = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly clock: Clock = systemClock,
    private readonly slowMs = SLOW_WRITE_MS,
    private readonly poolForMs = POOL_FOR_MS,
  ) {}

  /** True when a write may run inline now. */
  get open(): boolean {
    return this.clock.now() >= this.poolUntil;
  }

  /** Runs `write` inline and closes the gate for a while if it was slow. */
  run<T>(write: () => T): T {
    const started = this.clock.now();
    try {
      return write();
    } finally {
      const ended = this.clock.now();
      if (ended - started > this.slowMs) this.poolUntil = ended + this.poolForMs;
    }
  }
}

/** The gate every sink of this process shares unless given its own. */
export const processWriteGate = new InlineWriteGate();
