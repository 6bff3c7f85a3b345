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

  /** The largest key a page would hold now: undefined until `limit` keys were offered. */
  largestKept(): string | undefined {
    if (this.kept.length < this.limit) return undefined;
    this.trim();
    return this.kept[this.limit - 1]?.key;
  }

  /** The kept keys and values in key order, and whether any key beyond them was offered. */
  entries(): { entries: Array<{ key: string; value: T }>; more: boolean } {
    this.trim();
    return { entries: this.kept, more: this.cut };
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
 * Windows of a folder's sorted names kept between the pages of a listing: one pass over a
 * folder keeps several pages' names (`windowFor`), so listing a folder of n names in pages of
 * p reads it n / (8p) times rather than n / p. A window is used only while its folder's
 * stamp (inode, mtime and ctime in ns: any entry made, removed or renamed changes them) is
 * the one it was read under, and only when that mtime was already a second old at the read:
 * the file system's clock is coarse, so a change in the same tick as the last one before the
 * read could leave the stamp as it was.
 */
export class NameWindows<T> {
  private readonly windows = new Map<string, Window<T>>();
  /** The estimated memory the windows hold (ENTRY_BYTES + the key's UTF-16 bytes an entry). */
  private bytes = 0;

  constructor(
    private readonly maxWindows = 4,
    private readonly maxBytes = MAX_WINDOW_BYTES,
  ) {}

  /** How many names one pass keeps for a page of `count`. */
  static windowFor(count: number): number {
    return Math.max(count, Math.min(8 * count, MAX_WINDOW_NAMES));
  }

  /**
   * The `count` first values after `after` from the window of `folder` if it is still valid
   * for `stamp` and reaches past `after`; undefined when a pass over the folder is needed.
   */
  take(folder: string, stamp: string, after: string, count: number): { values: T[]; more: boolean } | undefined {
    const window = this.windows.get(folder);
    if (window === undefined) return undefined;
    if (window.stamp !== stamp) {
      this.drop(folder);
      return undefined;
    }
    if (after < window.after) return undefined;
    const { entries } = window;
    let low = 0;
    let high = entries.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((entries[mid] as { key: string }).key <= after) low = mid + 1;
      else high = mid;
    }
    if (low === entries.length && window.more) return undefined;
    const end = Math.min(entries.length, low + count);
    return { values: entries.slice(low, end).map((e) => e.value), more: end < entries.length || window.more };
  }

  /** Keeps the names a pass read (sorted, the smallest after `after`) for the next pages, if `stamp` can be trusted and they fit. */
  keep(folder: string, stamp: string | undefined, after: string, read: { entries: Array<{ key: string; value: T }>; more: boolean }): void {
    this.drop(folder);
    if (stamp === undefined) return;
    let bytes = 0;
    for (const { key } of read.entries) bytes += ENTRY_BYTES + 2 * key.length;
    if (bytes > this.maxBytes) return;
    for (const oldest of this.windows.keys()) {
      if (this.windows.size < this.maxWindows && this.bytes + bytes <= this.maxBytes) break;
      this.drop(oldest);
    }
    this.windows.set(folder, { stamp, after, entries: read.entries, more: read.more, bytes });
    this.bytes += bytes;
  }

  private drop(folder: string): void {
    const window = this.windows.get(folder);
    if (window === undefined) return;
    this.windows.delete(folder);
    this.bytes -= window.bytes;
  }
}

/** The names one pass keeps at most (keys are leaves: ≤ 255 bytes of UTF-8). */
const MAX_WINDOW_NAMES = 8192;
/** The memory all windows hold at most, estimated: two full windows of names of ~50 characters, or many smaller. */
const MAX_WINDOW_BYTES = 4 * 1024 * 1024;
/** An entry's memory besides its key's characters: the entry, its value and the array slot. */
const ENTRY_BYTES = 96;

interface Window<T> {
  stamp: string;
  bytes: number;
  after: string;
  entries: Array<{ key: string; value: T }>;
  more: boolean;
}

/**
 * A folder's stamp for NameWindows from its stat (bigint: ns times), or undefined when its
 * mtime is not at least `marginMs` older than `nowMs` (the time of the read about to start).
 */
export function folderStamp(stats: { ino: bigint; mtimeNs: bigint; ctimeNs: bigint }, nowMs: number, marginMs = 1000): string | undefined {
  const limitNs = BigInt(Math.floor(nowMs - marginMs)) * 1_000_000n;
  if (stats.mtimeNs >= limitNs || stats.ctimeNs >= limitNs) return undefined;
  return `${stats.ino}:${stats.mtimeNs}:${stats.ctimeNs}`;
}

/**
 * Bounds for reading a page of a folder from a listing in UTF-8 byte order (S3's), where
 * ferry's names sort in UTF-16 order and a folder `F` is listed as the key `F/`: that order
 * differs for characters from U+D800 up (supplementary ones against U+E000–U+FFFF), and puts
 * `F/` after `F-x`, `F.txt` and any name of `F` followed by a character below '/'.
 */
export const utf8Bounds = {
  /**
   * A key to start a listing after that skips nothing after `name`: its longest prefix of
   * characters below U+D800 (where both orders agree) sorts before every key of a later name.
   */
  startAfter(name: string): string {
    for (let i = 0; i < name.length; i++) if (name.charCodeAt(i) >= 0xd800) return name.slice(0, i);
    return name;
  },

  /**
   * The UTF-8 bytes that every key of a name sorting before `largest` (a key, in UTF-16
   * order) is at or before: once a listing is past them, no key still to come belongs before
   * `largest`. `from` is where the folder's leaves start in `largest` (the part before is
   * shared by every key listed).
   */
  pastAll(largest: string, from: number): Buffer {
    for (let i = from; i < largest.length; i++) {
      const unit = largest.charCodeAt(i);
      if (unit < 0x2f) return Buffer.from(`${largest.slice(0, i)}/`, 'utf8'); // a folder named largest[0, i) is listed as this key
      if (unit >= 0xd800) return Buffer.concat([Buffer.from(largest.slice(0, i), 'utf8'), Buffer.from([0xff])]); // 0xFF is in no UTF-8 text
    }
    return Buffer.from(largest, 'utf8');
  },
};
