/**
 * One stream of work shared by many consumers (the lanes of every connection): each `next()`
 * takes the following item, in order. Items are produced only when a consumer asks, so the
 * producer (a tree walk, a listing) is never more than the consumers' window ahead of them.
 * An error from the source ends the feed for everyone and is kept in `failure`.
 */
export class Feed<T> {
  private readonly iterator: AsyncIterator<T>;
  private tail: Promise<unknown> = Promise.resolve();
  private finished = false;
  /** Items handed out so far. */
  taken = 0;
  /** What the source threw, if it did. */
  failure: unknown;

  constructor(source: AsyncIterable<T>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** The next item, or undefined once the source is done (or failed, or closed). */
  next(): Promise<T | undefined> {
    const step = this.tail.then(async (): Promise<T | undefined> => {
      if (this.finished) return undefined;
      try {
        const result = await this.iterator.next();
        if (result.done) {
          this.finished = true;
          return undefined;
        }
        this.taken++;
        return result.value;
      } catch (error) {
        this.finished = true;
        this.failure = error;
        return undefined;
      }
    });
    this.tail = step.catch(() => undefined);
    return step;
  }

  get done(): boolean {
    return this.finished;
  }

  /** Stops the source early (releasing what it holds open). */
  async close(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    await this.tail;
    await this.iterator.return?.();
  }
}

/** Runs `lanes` copies of `lane` at once and waits for all of them. */
export async function inLanes(lanes: number, lane: () => Promise<void>): Promise<void> {
  await Promise.all(Array.from({ length: Math.max(1, lanes) }, lane));
}
