import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { Clock, Timer } from '../clock.js';
import { isCode, type Folder } from './safe-path.js';
import type { SpaceLedger } from './space.js';

/** A kept partial upload, as shown to an administrator. */
export interface PartialInfo {
  name: string;
  /** The declared size of the upload it belongs to. */
  size: number;
  /** Bytes received and kept. */
  held: number;
  /** When it will be removed, in wall-clock milliseconds since the epoch. */
  expiresAt: number;
}

export interface PartialLimits {
  ttlMs: number;
  /** Most partials kept at once. */
  maxCount: number;
  /** Most bytes kept in partials at once. */
  maxBytes: number;
}

interface PartialRecord {
  key: string;
  name: string;
  size: number;
  held: number;
  /** On the store's clock. */
  expiresAt: number;
  /** Order kept in: the oldest is evicted first. */
  seq: number;
}

/** Side file naming a partial's upload: "<size>\n<name>". */
const INFO_SUFFIX = '.name';

/**
 * Interrupted uploads kept for resuming, in `.ferry/partial/`: `<key>` holds the bytes and
 * `<key>.name` the upload's size and name (so they can be listed and aged after a restart).
 * A partial is keyed by the name and the declared size it was started for, so a different
 * file of the same name never continues it. Claiming a partial renames it away first: two
 * resumes can never share one. Partials are counted in the store's space; they expire after
 * the TTL (swept while running, on the store's Clock), and when keeping one more would pass
 * a cap, or an upload needs their room, the oldest go first: they can never starve uploads.
 */
export class PartialStore {
  private readonly records = new Map<string, PartialRecord>();
  private seq = 0;
  private timer: Timer | undefined;
  private timerAt = Infinity;
  /** Removals under way, by key: awaited before the key is reused, and by close(). */
  private readonly removing = new Map<string, Promise<void>>();
  private closed = false;

  constructor(
    private readonly dir: Folder,
    private readonly tmp: Folder,
    private readonly ledger: SpaceLedger,
    private readonly clock: Clock,
    readonly limits: PartialLimits,
  ) {}

  private keyFor(name: string, size: number): string {
    return createHash('sha256').update(`${size}\0${name}`).digest('hex');
  }

  /** Loads the partials kept by a previous run, dropping the expired, the orphaned and those over a cap. */
  async init(): Promise<void> {
    const entries = new Set(await fs.readdir(this.dir.path));
    const found: PartialRecord[] = [];
    for (const entry of entries) {
      if (entry.endsWith(INFO_SUFFIX)) {
        if (!entries.has(entry.slice(0, -INFO_SUFFIX.length))) await this.unlink(entry);
        continue;
      }
      const record = await this.load(entry, entries.has(entry + INFO_SUFFIX));
      if (record) found.push(record);
      else await Promise.all([this.unlink(entry), this.unlink(entry + INFO_SUFFIX)]);
    }
    found.sort((a, b) => a.expiresAt - b.expiresAt);
    for (const record of found) {
      record.seq = this.seq++;
      this.records.set(record.key, record);
      this.ledger.partials += record.held;
    }
    this.enforceCaps(0);
    this.arm();
  }

  private async load(key: string, hasInfo: boolean): Promise<PartialRecord | undefined> {
    if (!hasInfo) return undefined;
    try {
      const info = await fs.readFile(this.dir.entry(key + INFO_SUFFIX), { encoding: 'utf8', flag: 'r' });
      const newline = info.indexOf('\n');
      const size = Number(info.slice(0, newline));
      const name = info.slice(newline + 1);
      if (newline < 0 || !Number.isSafeInteger(size) || this.keyFor(name, size) !== key) return undefined;
      const stats = await fs.lstat(this.dir.entry(key));
      if (!stats.isFile() || stats.size > size) return undefined;
      const left = this.limits.ttlMs - (Date.now() - stats.mtimeMs);
      if (left <= 0) return undefined;
      return { key, name, size, held: stats.size, expiresAt: this.clock.now() + left, seq: 0 };
    } catch (error) {
      if (isCode(error, 'ENOENT')) return undefined;
      throw error;
    }
  }

  /** Bytes held for (name, size), or 0. */
  sizeOf(name: string, size: number): number {
    const record = this.records.get(this.keyFor(name, size));
    if (!record || record.expiresAt <= this.clock.now()) return 0;
    return record.held;
  }

  get count(): number {
    return this.records.size;
  }

  /** Every kept partial, oldest first. */
  list(): PartialInfo[] {
    const now = this.clock.now();
    const wall = Date.now();
    return [...this.records.values()]
      .sort((a, b) => a.seq - b.seq)
      .map((r) => ({ name: r.name, size: r.size, held: r.held, expiresAt: Math.round(wall + (r.expiresAt - now)) }));
  }

  /**
   * Keeps `tempName` (in the temporaries folder, `held` bytes of an upload of `name` and
   * `size`) for a later resume, evicting the oldest partials first if a cap would be passed.
   * Returns false (and removes the bytes) when this one alone is over the byte cap.
   */
  async keep(tempName: string, name: string, size: number, held: number): Promise<boolean> {
    if (this.closed || held > this.limits.maxBytes || this.limits.maxCount < 1) {
      await fs.rm(this.tmp.entry(tempName), { force: true });
      return false;
    }
    const key = this.keyFor(name, size);
    this.drop(key); // a partial of the same upload is replaced
    await this.removing.get(key); // its files must be gone before ours take the name
    this.enforceCaps(held, 1);
    await fs.writeFile(this.dir.entry(key + INFO_SUFFIX), `${size}\n${name}`, { flag: 'w' });
    await fs.rename(this.tmp.entry(tempName), this.dir.entry(key));
    const raced = this.records.get(key);
    if (raced) {
      // Another upload of the same name and size was kept meanwhile: our rename replaced its bytes.
      this.records.delete(key);
      this.ledger.partials -= raced.held;
    }
    this.enforceCaps(held, 1);
    this.records.set(key, { key, name, size, held, expiresAt: this.clock.now() + this.limits.ttlMs, seq: this.seq++ });
    this.ledger.partials += held;
    this.arm();
    return true;
  }

  /**
   * Moves the partial for (name, size) into the temporaries under a fresh name; returns that
   * name and the bytes it holds (now counted as reserved, for the caller to release), or
   * undefined if there is none (or another upload claimed it first).
   */
  async claim(name: string, size: number): Promise<{ tempName: string; held: number } | undefined> {
    const key = this.keyFor(name, size);
    const record = this.records.get(key);
    if (!record || record.expiresAt <= this.clock.now()) return undefined;
    this.records.delete(key);
    this.ledger.partials -= record.held;
    this.ledger.reserved += record.held;
    const tempName = `${randomBytes(12).toString('hex')}.part`;
    try {
      await fs.rename(this.dir.entry(key), this.tmp.entry(tempName));
    } catch (error) {
      this.ledger.reserved -= record.held;
      if (isCode(error, 'ENOENT')) return undefined;
      throw error;
    }
    await this.unlink(key + INFO_SUFFIX);
    return { tempName, held: record.held };
  }

  /** Drops the partial of (name, size), if any (a fresh upload replaces it). */
  async discard(name: string, size: number): Promise<void> {
    const removal = this.drop(this.keyFor(name, size));
    if (removal) await removal;
  }

  /** Evicts the oldest partial (its room is free at once, the files go soon after); false when none is left. */
  evictOldest(): boolean {
    let oldest: PartialRecord | undefined;
    for (const record of this.records.values()) if (!oldest || record.seq < oldest.seq) oldest = record;
    if (!oldest) return false;
    this.drop(oldest.key);
    return true;
  }

  /** Waits for the files of evicted partials to be gone (so the disk has their room back). */
  async settled(): Promise<void> {
    await Promise.all([...this.removing.values()]);
  }

  /** Removes every partial past its TTL. */
  sweep(): void {
    const now = this.clock.now();
    for (const record of [...this.records.values()]) if (record.expiresAt <= now) this.drop(record.key);
    this.arm();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    await this.settled();
  }

  /** Evicts the oldest until `bytes` more in `count` more partials stay within the caps. */
  private enforceCaps(bytes: number, count = 0): void {
    while (this.records.size > 0 && (this.records.size + count > this.limits.maxCount || this.ledger.partials + bytes > this.limits.maxBytes)) {
      this.evictOldest();
    }
  }

  private drop(key: string): Promise<void> | undefined {
    const record = this.records.get(key);
    if (!record) return undefined;
    this.records.delete(key);
    this.ledger.partials -= record.held;
    const removal = Promise.all([this.unlink(key), this.unlink(key + INFO_SUFFIX)]).then(() => {
      if (this.removing.get(key) === removal) this.removing.delete(key);
    });
    this.removing.set(key, removal);
    return removal;
  }

  private async unlink(entry: string): Promise<void> {
    await fs.rm(this.dir.entry(entry), { force: true }).catch(() => undefined);
  }

  /** One timer, for the earliest expiry. */
  private arm(): void {
    if (this.closed) return;
    let earliest = Infinity;
    for (const record of this.records.values()) earliest = Math.min(earliest, record.expiresAt);
    if (earliest === this.timerAt && this.timer) return;
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = earliest;
    if (earliest === Infinity) return;
    this.timer = this.clock.setTimer(earliest - this.clock.now(), () => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.sweep();
    });
  }
}
