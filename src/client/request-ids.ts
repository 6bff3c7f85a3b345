const MAX_ID = 0xffffffff;

/**
 * Request ids (PROTOCOL.md §3): never 0 (HELLO's, and the connection's own after it),
 * unique among the requests still in progress, cycling through the u32 space: after
 * 4294967295 comes 1, and an id still in use is skipped.
 */
export class RequestIds {
  private next: number;
  private readonly inUse = new Set<number>();

  constructor(first = 1) {
    if (!Number.isInteger(first) || first < 1 || first > MAX_ID) throw new RangeError(`request id ${first} is outside 1…${MAX_ID}`);
    this.next = first;
  }

  /** The next free id, now in use until `release`. */
  take(): number {
    // Every id in use is skipped at most once, so this ends after inUse.size + 1 steps.
    for (;;) {
      const id = this.next;
      this.next = id >= MAX_ID ? 1 : id + 1;
      if (!this.inUse.has(id)) {
        this.inUse.add(id);
        return id;
      }
    }
  }

  release(id: number): void {
    this.inUse.delete(id);
  }

  /** Ids in use. */
  get size(): number {
    return this.inUse.size;
  }
}
