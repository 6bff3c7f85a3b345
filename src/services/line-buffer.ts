/**
 * Collects socket bytes into one text line, never holding more than the line limit: a peer
 * that sends an endless line is refused as soon as it goes over, not after it has filled
 * our memory. Lines end with "\n"; a "\r" before it is dropped.
 */

export type LineResult =
  | { kind: 'line'; text: string }
  | { kind: 'malformed'; reason: string };

const decoder = new TextDecoder('utf-8', { fatal: true });

export class LineBuffer {
  private parts: Buffer[] = [];
  private length = 0;

  /** `maxBytes`: the longest line accepted, not counting its "\r\n" / "\n". */
  constructor(readonly maxBytes: number) {}

  /** Feeds bytes; returns the first line once complete (later bytes are ignored), or undefined. */
  push(chunk: Buffer): LineResult | undefined {
    const newline = chunk.indexOf(0x0a);
    const take = newline === -1 ? chunk : chunk.subarray(0, newline);
    this.parts.push(take);
    this.length += take.length;
    if (newline !== -1) return this.finish();
    // One byte of slack for a "\r" whose "\n" has not arrived yet.
    if (this.length > this.maxBytes + 1) return this.tooLong();
    return undefined;
  }

  /** The peer finished sending: an unterminated last line still counts, nothing at all does not. */
  end(): LineResult {
    if (this.length === 0) return { kind: 'malformed', reason: 'connection closed before a line was sent' };
    return this.finish();
  }

  private finish(): LineResult {
    let bytes = Buffer.concat(this.parts, this.length);
    this.parts = [];
    this.length = 0;
    if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
    if (bytes.length > this.maxBytes) return this.tooLong();
    try {
      return { kind: 'line', text: decoder.decode(bytes) };
    } catch {
      return { kind: 'malformed', reason: 'line is not valid UTF-8' };
    }
  }

  private tooLong(): LineResult {
    return { kind: 'malformed', reason: `line is longer than ${this.maxBytes} bytes` };
  }
}
