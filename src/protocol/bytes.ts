import { isUtf8 } from 'node:buffer';
import { ProtocolError } from '../errors.js';

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

  /** u64 that must be exact as a JS number (≤ 2^53 − 1). */
  u64(what: string): number {
    const start = this.take(8, what);
    const high = this.bytes.readUInt32BE(start);
    // Two u32 halves: no BigInt per field. Above 2^53 − 1 the high half exceeds 21 bits.
    if (high > 0x1fffff) throw new ProtocolError(`${what} out of range: ${this.bytes.readBigUInt64BE(start)}`);
    return high * 0x1_0000_0000 + this.bytes.readUInt32BE(start + 4);
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
    const text = raw.toString('utf8');
    if (!isUtf8(raw)) {
      throw new ProtocolError(`${what} is not valid UTF-8`);
    }
    return text;
  }

  end(what: string): void {
    if (this.offset !== this.bytes.length) {
      throw new ProtocolError(`${this.bytes.length - this.offset} trailing bytes in ${what}`);
    }
  }
}

/** Append-only builder for a payload; sizes are computed up front by the caller's fields. */
export class PayloadWriter {
  private readonly parts: Buffer[] = [];
  private length = 0;

  private push(part: Buffer): this {
    this.parts.push(part);
    this.length += part.length;
    return this;
  }

  u8(value: number): this {
    const b = Buffer.allocUnsafe(1);
    b.writeUInt8(value);
    return this.push(b);
  }

  u16(value: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeUInt16BE(value);
    return this.push(b);
  }

  u32(value: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(value >>> 0);
    return this.push(b);
  }

  u64(value: number): this {
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64BE(BigInt(value));
    return this.push(b);
  }

  raw(bytes: Buffer): this {
    return this.push(bytes);
  }

  string(text: string): this {
    const bytes = Buffer.from(text, 'utf8');
    if (bytes.length > 0xffff) throw new RangeError('string longer than 65535 bytes');
    return this.u16(bytes.length).push(bytes);
  }

  get byteLength(): number {
    return this.length;
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.parts, this.length);
  }
}
