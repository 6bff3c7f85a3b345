import { isUtf8 } from 'node:buffer';
import { ProtocolError } from '../errors.js';
import { MAX_CONTROL_PAYLOAD } from './constants.js';

const TWO_TO_32 = 2 ** 32;
/** The high half of Number.MAX_SAFE_INTEGER (2^53 − 1): any larger high half is out of range. */
const MAX_SAFE_HIGH = 2 ** 21 - 1;
/** Unused bytes a framed buffer may keep behind it rather than be copied to its exact size. */
const SLACK_KEPT = 4096;

/**
 * Bounds-checked cursor over one frame payload. Every read checks the remaining length first,
 * so a lying length field can never read past the payload or allocate from it.
 */
export class PayloadReader {
  private offset = 0;

  constructor(private bytes: Buffer) {}

  /**
   * Copies the payload once into memory of its own (it may be a view of a reused read buffer),
   * so `view` can hand out slices of it: one allocation for a frame of many small fields.
   */
  own(): void {
    this.bytes = Buffer.from(this.bytes);
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  private take(count: number, what: string): number {
    if (this.offset + count > this.bytes.length) {
      throw new ProtocolError(`payload too short for ${what}`);
    }
    const start = this.offset;
    this.offset += count;
    return start;
  }

  u8(what: string): number {
    return this.bytes.readUInt8(this.take(1, what));
  }

  u16(what: string): number {
    return this.bytes.readUInt16BE(this.take(2, what));
  }

  u32(what: string): number {
    return this.bytes.readUInt32BE(this.take(4, what));
  }

  /** u64 that must be exact as a JS number (≤ 2^53 − 1). Two u32 halves: no BigInt per field. */
  u64(what: string): number {
    const at = this.take(8, what);
    const high = this.bytes.readUInt32BE(at);
    const low = this.bytes.readUInt32BE(at + 4);
    if (high > MAX_SAFE_HIGH) {
      throw new ProtocolError(`${what} out of range: ${this.bytes.readBigUInt64BE(at)}`);
    }
    return high * TWO_TO_32 + low;
  }

  bytesOf(count: number, what: string): Buffer {
    const start = this.take(count, what);
    return Buffer.from(this.bytes.subarray(start, start + count));
  }

  /** `count` bytes as a slice of the payload, no copy: only after `own()`. */
  view(count: number, what: string): Buffer {
    const start = this.take(count, what);
    return this.bytes.subarray(start, start + count);
  }

  /** u16 byte length, then that many bytes of UTF-8 that must decode without loss. */
  string(what: string): string {
    const length = this.u16(`${what} length`);
    const start = this.take(length, what);
    const raw = this.bytes.subarray(start, start + length);
    // isUtf8 refuses what a lossy decode would have replaced (bad sequences, overlongs, surrogates).
    if (!isUtf8(raw)) {
      throw new ProtocolError(`${what} is not valid UTF-8`);
    }
    return raw.toString('utf8');
  }

  end(what: string): void {
    if (this.offset !== this.bytes.length) {
      throw new ProtocolError(`${this.bytes.length - this.offset} trailing bytes in ${what}`);
    }
  }
}

/**
 * Append-only builder for a payload, written into one growing buffer (a buffer per field cost
 * more than the fields: a BATCH_FILES reply has six per file). `headerRoom` leaves that many
 * bytes in front for a frame header (`framed`), so the payload is never copied to be framed.
 */
export class PayloadWriter {
  private buffer: Buffer;
  private length: number;

  constructor(private readonly headerRoom = 0) {
    this.buffer = Buffer.allocUnsafe(headerRoom + 256);
    this.length = headerRoom;
  }

  /** Makes room for `count` more bytes and returns where they go (the caller fills them). */
  private reserve(count: number): number {
    const at = this.length;
    const needed = at + count;
    if (needed > this.buffer.length) {
      // Doubling, but a frame of up to the control cap gets a buffer of exactly its size.
      const capped = this.headerRoom + MAX_CONTROL_PAYLOAD;
      const bigger = Buffer.allocUnsafe(needed <= capped ? Math.min(Math.max(2 * this.buffer.length, needed), capped) : Math.max(2 * this.buffer.length, needed));
      this.buffer.copy(bigger, 0, 0, at);
      this.buffer = bigger;
    }
    this.length = needed;
    return at;
  }

  u8(value: number): this {
    const at = this.reserve(1); // before `this.buffer` is read: reserving may replace it
    this.buffer.writeUInt8(value, at);
    return this;
  }

  u16(value: number): this {
    const at = this.reserve(2);
    this.buffer.writeUInt16BE(value, at);
    return this;
  }

  u32(value: number): this {
    const at = this.reserve(4);
    this.buffer.writeUInt32BE(value >>> 0, at);
    return this;
  }

  u64(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) {
      const big = BigInt(value); // throws, as it always did, for what is no u64
      const at = this.reserve(8);
      this.buffer.writeBigUInt64BE(big, at);
      return this;
    }
    const at = this.reserve(8);
    this.buffer.writeUInt32BE(Math.floor(value / TWO_TO_32), at);
    this.buffer.writeUInt32BE(value >>> 0, at + 4);
    return this;
  }

  raw(bytes: Uint8Array): this {
    const at = this.reserve(bytes.length);
    this.buffer.set(bytes, at);
    return this;
  }

  string(text: string): this {
    const length = Buffer.byteLength(text, 'utf8');
    if (length > 0xffff) throw new RangeError('string longer than 65535 bytes');
    this.u16(length);
    const at = this.reserve(length);
    this.buffer.write(text, at, length, 'utf8');
    return this;
  }

  /** Payload bytes written so far. */
  get byteLength(): number {
    return this.length - this.headerRoom;
  }

  /** The payload (its own memory: no larger buffer kept alive behind it). */
  toBuffer(): Buffer {
    return Buffer.from(this.buffer.subarray(this.headerRoom, this.length));
  }

  /**
   * The buffer with `write` filling the header room in front of the payload: one frame. Copied
   * to its exact size only when doubling left much unused behind it (a queued frame holds it).
   */
  framed(write: (header: Buffer) => void): Buffer {
    write(this.buffer.subarray(0, this.headerRoom));
    const used = this.buffer.subarray(0, this.length);
    return this.buffer.length - this.length > SLACK_KEPT ? Buffer.from(used) : used;
  }
}
