import type { Clock, Timer } from '../../clock.js';
import type { DigestAlgorithm } from '../../io/digest.js';
import type { KeptPartials } from '../backend.js';
import type { PartialInfo } from '../partials.js';
import type { Bucket } from './bucket.js';
import { decodeMeta, type Keys } from './keys.js';

/** An interrupted upload kept in the bucket: a multipart upload and what a resume needs. */
export interface PartialRecord {
  name: string;
  size: number;
  /** Key of the blob the multipart upload will become, and its upload id. */
  blob: string;
  uploadId: string;
  partSize: number;
  /** The parts uploaded so far, 1..n, each `partSize` bytes. */
  parts: { number: number; etag: string }[];
  algorithm: DigestAlgorithm;
  /** Digest (hex, in `algorithm`) of the bytes the parts hold. */
  prefixDigest: string;
  /** Wall time of the last part (ms since the epoch). */
  updatedAt: number;
}

export function heldBy(record: PartialRecord): number {
  return Math.min(record.size, record.parts.length * record.partSize);
}

/**
 * The interrupted uploads of a bucket, shared by every server on it: each is a multipart
 * upload plus a small record object, written after every part, so a resume through any server
 * continues it. Expired ones (no new part for the TTL) are aborted by whichever server sweeps
 * first, as are multipart uploads that never got a record (a server killed before its first
 * part). `count`, `list` and `sizeOf` answer from the last sweep: other servers' partials show
 * up there within one sweep interval.
 */
export class S3Partials implements KeptPartials {
  private known = new Map<string, PartialRecord>();
  private timer: Timer | undefined;
  private closed = false;
  /** The clock's reading at open, against the wall time: expiry is tested on the store's clock. */
  private readonly wallOffset: number;

  constructor(
    private readonly bucket: Bucket,
    private readonly keys: Keys,
    private readonly clock: Clock,
    private readonly ttlMs: number,
  ) {
    this.wallOffset = Date.now() - clock.now();
  }

  /** Wall time on the store's clock (moves with a ManualClock in tests). */
  wallNow(): number {
    return this.clock.now() + this.wallOffset;
  }

  get count(): number {
    return this.known.size;
  }

  get heldBytes(): number {
    return this.heldBytesExcept(() => false);
  }

  /** Bytes held by the kept uploads `skip` does not name (by name and declared size). */
  heldBytesExcept(skip: (name: string, size: number) => boolean): number {
    let sum = 0;
    for (const record of this.known.values()) if (!skip(record.name, record.size)) sum += heldBy(record);
    return sum;
  }

  list(): PartialInfo[] {
    return [...this.known.values()]
      .sort((a, b) => a.updatedAt - b.updatedAt)
      .map((r) => ({ name: r.name, size: r.size, held: heldBy(r), expiresAt: r.updatedAt + this.ttlMs }));
  }

  sizeOf(name: string, size: number): number {
    const record = this.known.get(this.keys.partial(name, size));
    return record ? heldBy(record) : 0;
  }

  async read(name: string, size: number): Promise<PartialRecord | undefined> {
    const key = this.keys.partial(name, size);
    const text = await this.bucket.getText(key);
    const record = text === undefined ? undefined : parseRecord(text);
    if (record === undefined || record.name !== name || record.size !== size) {
      this.known.delete(key);
      return undefined;
    }
    if (record.updatedAt + this.ttlMs <= this.wallNow()) {
      await this.drop(key, record);
      return undefined;
    }
    this.known.set(key, record);
    return record;
  }

  async write(record: PartialRecord): Promise<void> {
    const key = this.keys.partial(record.name, record.size);
    await this.bucket.put(key, JSON.stringify(record), { contentType: 'application/json' });
    this.known.set(key, record);
  }

  /** Forgets the record (the upload was committed, or is being continued). */
  async forget(name: string, size: number): Promise<void> {
    const key = this.keys.partial(name, size);
    this.known.delete(key);
    await this.bucket.delete(key);
  }

  /** Aborts the kept upload of (name, size), if any, and removes its record. */
  async discard(name: string, size: number): Promise<void> {
    const key = this.keys.partial(name, size);
    const text = await this.bucket.getText(key);
    const record = text === undefined ? undefined : parseRecord(text);
    if (record) await this.drop(key, record);
    else this.known.delete(key);
  }

  /**
   * Aborts a kept upload and removes its record. A blob its server finished but did not live to
   * publish is deleted too, unless the name points to it (published, record not yet removed).
   */
  private async drop(key: string, record: PartialRecord): Promise<void> {
    this.known.delete(key);
    await this.bucket.abortMultipart(record.blob, record.uploadId);
    const head = await this.bucket.head(this.keys.file(record.name));
    if ((head && decodeMeta(head)?.blob) !== record.blob) await this.bucket.delete(record.blob);
    await this.bucket.delete(key);
  }

  /** Reads every record, aborts the expired ones and orphaned multipart uploads; then every `interval`. */
  async start(intervalMs: number): Promise<void> {
    await this.sweep();
    const arm = (): void => {
      if (this.closed) return;
      this.timer = this.clock.setTimer(intervalMs, () => {
        void this.sweep().catch(() => undefined).finally(arm);
      });
    };
    arm();
  }

  async sweep(): Promise<void> {
    const found = new Map<string, PartialRecord>();
    const now = this.wallNow();
    let token: string | undefined;
    do {
      const page = await this.bucket.list(this.keys.partials, { token });
      for (const { key } of page.keys) {
        const text = await this.bucket.getText(key);
        const record = text === undefined ? undefined : parseRecord(text);
        if (record === undefined) continue;
        if (record.updatedAt + this.ttlMs <= now) await this.drop(key, record);
        else found.set(key, record);
      }
      token = page.next;
    } while (token !== undefined);
    this.known = found;
    // Multipart uploads with no record: started by a server that died before its first part.
    const recorded = new Set([...found.values()].map((r) => r.uploadId));
    for (const upload of await this.bucket.listMultipart(this.keys.blobs)) {
      if (recorded.has(upload.uploadId)) continue;
      if (upload.initiated + this.ttlMs <= now) await this.bucket.abortMultipart(upload.key, upload.uploadId);
    }
  }

  close(): void {
    this.closed = true;
    this.timer?.cancel();
  }
}

function parseRecord(text: string): PartialRecord | undefined {
  try {
    const value = JSON.parse(text) as PartialRecord;
    if (typeof value.name !== 'string' || !Number.isSafeInteger(value.size) || !Array.isArray(value.parts) || typeof value.uploadId !== 'string') return undefined;
    return value;
  } catch {
    return undefined;
  }
}
