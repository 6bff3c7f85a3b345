/**
 * Bytes allowed in flight (downloads asked for and not yet written out): `take` waits until
 * what is held plus the new bytes fits, in the order asked. A request larger than the whole
 * budget goes alone once nothing else is held, so it never waits for ever. Waits end only by
 * releases: every holder's request settles by its own deadline (the client's timeout).
 */
export class ByteBudget {
  private held = 0;
  private readonly waiting: { bytes: number; grant: () => void }[] = [];

  constructor(readonly limit: number) {}

  /** Bytes held now. */
  get inFlight(): number {
    return this.held;
  }

  /** Holds `bytes` (waiting for room); the returned release (idempotent) gives them back. */
  async take(bytes: number): Promise<() => void> {
    if (this.waiting.length > 0 || !this.fits(bytes)) await new Promise<void>((grant) => this.waiting.push({ bytes, grant }));
    else this.held += bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held -= bytes;
      this.grantWaiting();
    };
  }

  private fits(bytes: number): boolean {
    return this.held === 0 || this.held + bytes <= this.limit;
  }

  private grantWaiting(): void {
    while (this.waiting.length > 0 && this.fits(this.waiting[0]!.bytes)) {
      const next = this.waiting.shift()!;
      this.held += next.bytes;
      next.grant();
    }
  }
}
