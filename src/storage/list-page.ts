import type { StoredEntry } from './types.js';

/**
 * The `limit` smallest keys after `after` among those offered, holding about 2 × `limit`:
 * candidates are sorted and cut back to `limit` whenever they reach twice that. `more` says a
 * key beyond the kept ones was offered (the page is not the folder's last).
 */
export class SmallestAfter<T> {
  private kept: { key: string; value: T }[] = [];
  private cut = false;

  constructor(
    private readonly after: string,
    private readonly limit: number,
  ) {}

  offer(key: string, value: T): void {
    if (key <= this.after) return;
    this.kept.push({ key, value });
    if (this.kept.length >= 2 * this.limit) this.trim();
  }

  /** The kept values in key order, and whether any key beyond them was offered. */
  result(): { values: T[]; more: boolean } {
    this.trim();
    return { values: this.kept.map((k) => k.value), more: this.cut };
  }

  private trim(): void {
    this.kept.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    if (this.kept.length > this.limit) {
      this.kept.length = this.limit;
      this.cut = true;
    }
  }
}

/**
 * A page of a listing taken from its whole stream (a backend without a way to start part-way):
 * the `limit` entries with the smallest names after `after`, whatever order the stream has.
 * Holds one batch and about two pages.
 */
export async function pageOfStream(stream: AsyncIterable<StoredEntry[]>, after: string, limit: number): Promise<StoredEntry[]> {
  const page = new SmallestAfter<StoredEntry>(after, limit);
  for await (const batch of stream) for (const entry of batch) page.offer(entry.name, entry);
  return page.result().values;
}
