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
