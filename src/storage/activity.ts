import { FerryError } from '../errors.js';

/**
 * Operations in flight on a store, so `close` can wait for them before it closes the folder
 * descriptors they use (a closed descriptor's number may be reused by another file).
 */
export class Activity {
  private running = 0;
  private closing = false;
  private waiters: (() => void)[] = [];

  async track<T>(work: () => Promise<T>): Promise<T> {
    if (this.closing) throw new FerryError('CLOSED', 'the store is closed');
    this.running++;
    try {
      return await work();
    } finally {
      if (--this.running === 0) for (const wake of this.waiters.splice(0)) wake();
    }
  }

  /** Refuses new operations and resolves once those running have ended. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.running > 0) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
}
