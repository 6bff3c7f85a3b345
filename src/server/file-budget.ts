import { readFileSync } from 'node:fs';
import type { Clock } from '../clock.js';
import { FerryError } from '../errors.js';

/**
 * The server's allowance of files held open for transfers (a download's file, an upload's
 * temporary), shared by every connection. A transfer takes a slot right before its bytes move
 * and gives it back when they stop; when all are taken it waits a bounded time, then is
 * refused with BUSY. So no number of connections or pipelined requests can push the process
 * into EMFILE, which would break every other user's transfers and the listening socket.
 */
export class FileBudget {
  private used = 0;
  /** In arrival order: a request that does not fit yet holds back the ones behind it, so a large one is never starved. */
  private readonly waiting: { count: number; grant: () => void }[] = [];

  constructor(
    readonly limit: number,
    private readonly clock: Clock,
    /** How long a transfer waits for its slots before it is refused. */
    private readonly waitMs = 10_000,
  ) {}

  get inUse(): number {
    return this.used;
  }

  /**
   * Takes `count` slots (one per file the caller may hold open at once; at most the whole
   * budget); the returned release (idempotent) gives them all back.
   */
  async acquire(count = 1): Promise<() => void> {
    const slots = Math.max(1, Math.min(Math.floor(count), this.limit));
    if (this.waiting.length === 0 && this.used + slots <= this.limit) {
      this.used += slots;
      return this.releaser(slots);
    }
    await new Promise<void>((resolve, reject) => {
      const waiter = {
        count: slots,
        grant: () => {
          timer.cancel();
          resolve();
        },
      };
      const timer = this.clock.setTimer(this.waitMs, () => {
        const index = this.waiting.indexOf(waiter);
        if (index >= 0) this.waiting.splice(index, 1);
        this.grantWaiting(); // the ones it held back may fit now
        reject(new FerryError('BUSY', 'the server has too many files open: try again shortly'));
      });
      this.waiting.push(waiter);
    });
    return this.releaser(slots); // counted when granted
  }

  private releaser(slots: number): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= slots;
      this.grantWaiting();
    };
  }

  /** Grants waiting requests in order while the first one fits. */
  private grantWaiting(): void {
    for (let next = this.waiting[0]; next !== undefined && this.used + next.count <= this.limit; next = this.waiting[0]) {
      this.waiting.shift();
      this.used += next.count;
      next.grant();
    }
  }
}

/**
 * A default that leaves room under the process's open-file limit for the listening sockets,
 * every allowed connection and the store's own brief opens (folders, digest records).
 */
export function defaultFileBudget(maxConnections: number): number {
  const limit = openFileLimit();
  return Math.max(16, Math.min(4096, limit - maxConnections - 128));
}

/** The soft RLIMIT_NOFILE, read from /proc on Linux; 1024 (the common default) elsewhere. */
function openFileLimit(): number {
  try {
    const line = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (line?.[1] === 'unlimited') return 1 << 20;
    if (line?.[1] !== undefined) return Number(line[1]);
  } catch {
    // not Linux
  }
  return 1024;
}
