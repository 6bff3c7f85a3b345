import { FerryError } from '../errors.js';

/**
 * The space a store holds, as running totals kept exact under concurrency: every change is a
 * synchronous step on the event loop, so two uploads can never both fit into the same room.
 *
 * - `stored`: bytes of the files under the root, walked once at open (only with a quota) and
 *   then moved by each commit (+ new size − size of a replaced file) and each removal. Files
 *   changed by hand under the root while the server runs are seen at the next start.
 * - `partials`: bytes held by interrupted uploads kept for resuming.
 * - `reserved`: room promised to uploads in progress (their declared size, or what a chunked
 *   upload has grown to), released on commit or abort.
 */
export class SpaceLedger {
  stored = 0;
  partials = 0;
  reserved = 0;

  constructor(readonly quota: number | undefined) {}

  /** Everything counted against the quota. */
  get used(): number {
    return this.stored + this.partials + this.reserved;
  }

  fits(bytes: number): boolean {
    return this.quota === undefined || this.used + bytes <= this.quota;
  }

  /**
   * Reserves `bytes`, first calling `evictOne` (drop the oldest kept partial; false when none
   * is left) as long as they do not fit; throws QUOTA if they never do.
   */
  reserve(bytes: number, evictOne: () => boolean): void {
    while (!this.fits(bytes)) {
      if (!evictOne()) {
        throw new FerryError('QUOTA', `the server's quota of ${this.quota} bytes has no room for ${bytes} more (${this.used} used)`);
      }
    }
    this.reserved += bytes;
  }

  /** A commit or removal changed the stored bytes (counted only with a quota: no walk is made without). */
  storedChanged(delta: number): void {
    if (this.quota !== undefined) this.stored += delta;
  }

  release(bytes: number): void {
    this.reserved -= bytes;
  }
}
