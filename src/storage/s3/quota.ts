import type { Clock, Timer } from '../../clock.js';
import { FerryError } from '../../errors.js';
import type { SpaceUse } from '../backend.js';
import type { Bucket } from './bucket.js';

/** How often the prefix is summed again, at least (longer when a survey itself takes long). */
export const SURVEY_EVERY_MS = 60_000;
/** A survey waits at least this many times its own duration before the next (bounds the listing load). */
const SURVEY_SPACING = 10;

/**
 * A quota shared by every server on one bucket prefix, kept approximately: no server sees the
 * others' writes as they happen. Each server sums the sizes of every object under the prefix
 * (files, blobs of files sent in parts, its own records) with a paged listing at start and
 * every minute; between surveys it adds its own stores and removals; kept partial uploads are
 * counted from the partial records; room is reserved per upload before its bytes are taken.
 * What other servers store within one survey interval is seen at the next one, so N servers
 * together may overshoot by what they store in that time; a quota set on the bucket in the
 * object store is exact (its refusal reaches clients as QUOTA too).
 */
export class SharedQuota {
  /** Bytes under the prefix at the last survey, moved by this server's changes since. */
  private stored = 0;
  private reserved = 0;
  /** This server's changes since the survey in progress began (added to its total: never undercounted). */
  private sinceSurvey = 0;
  private surveying = false;
  private timer: Timer | undefined;
  private closed = false;

  constructor(
    readonly quota: number,
    private readonly bucket: Bucket,
    private readonly prefix: string,
    private readonly clock: Clock,
    /** Bytes held by kept partial uploads that no upload of this server is continuing. */
    private readonly partialBytes: () => number,
  ) {}

  get space(): SpaceUse {
    return { quota: this.quota, stored: this.stored, partials: this.partialBytes(), reserved: this.reserved };
  }

  get used(): number {
    return this.stored + this.partialBytes() + this.reserved;
  }

  /** Sums the prefix now, then again every SURVEY_EVERY_MS (or 10× a survey's duration, if longer). */
  async start(): Promise<void> {
    const took = await this.survey();
    const arm = (wait: number): void => {
      if (this.closed) return;
      this.timer = this.clock.setTimer(wait, () => {
        void this.survey().then(
          (ms) => arm(Math.max(SURVEY_EVERY_MS, ms * SURVEY_SPACING)),
          () => arm(SURVEY_EVERY_MS), // the store is unreachable: keep the running total
        );
      });
    };
    arm(Math.max(SURVEY_EVERY_MS, took * SURVEY_SPACING));
  }

  /** Lists every object under the prefix and sets the total from it; returns how long it took (ms). */
  async survey(): Promise<number> {
    if (this.surveying) return 0;
    this.surveying = true;
    const started = this.clock.now();
    this.sinceSurvey = 0;
    try {
      let total = 0;
      let token: string | undefined;
      do {
        const page = await this.bucket.list(this.prefix, { token });
        for (const { size } of page.keys) total += size;
        token = page.next;
      } while (token !== undefined && !this.closed);
      this.stored = total + this.sinceSurvey;
      return this.clock.now() - started;
    } finally {
      this.surveying = false;
    }
  }

  /** Throws QUOTA when `bytes` more do not fit. */
  check(bytes: number): void {
    if (bytes > 0 && this.used + bytes > this.quota) {
      throw new FerryError('QUOTA', `the server's quota of ${this.quota} bytes has no room for ${bytes} more (${this.used} used)`);
    }
  }

  /** Reserves room for `bytes` more, or throws QUOTA. */
  reserve(bytes: number): void {
    this.check(bytes);
    if (bytes > 0) this.reserved += bytes;
  }

  release(bytes: number): void {
    this.reserved -= bytes;
  }

  /** This server stored (+) or removed (−) bytes under the prefix. */
  storedChanged(delta: number): void {
    this.stored += delta;
    if (this.surveying) this.sinceSurvey += delta;
  }

  close(): void {
    this.closed = true;
    this.timer?.cancel();
  }
}
