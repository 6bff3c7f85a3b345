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
  private readonly waiting: { grant: () => void }[] = [];

  constructor(
    readonly limit: number,
    private readonly clock: Clock,
    /** How long a transfer waits for a slot before it is refused. */
    private readonly waitMs = 10_000,
  ) {}

  get inUse(): number {
    return this.used;
  }

  /** Takes a slot; the returned release (idempotent) gives it back. */
  async acquire(): Promise<() => void> {
    if (this.used < this.limit) {
      this.used++;
      return this.releaser();
    }
    await new Promise<void>((resolve, reject) => {
      const waiter = {
        grant: () => {
          timer.cancel();
          resolve();
        },
      };
      const timer = this.clock.setTimer(this.waitMs, () => {
        const index = this.waiting.indexOf(waiter);
        if (index >= 0) this.waiting.splice(index, 1);
        reject(new FerryError('BUSY', 'the server has too many files open: try again shortly'));
      });
      this.waiting.push(waiter);
    });
    return this.releaser(); // the slot was handed over by a release, already counted
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next.grant();
      else this.used--;
    };
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
