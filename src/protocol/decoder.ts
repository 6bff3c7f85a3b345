import { ProtocolError } from '../errors.js';
import { HEADER_SIZE, MAX_CHUNK_SIZE, MAX_CONTROL_PAYLOAD, MessageType, PutFlag } from './constants.js';
import { decodePayload, type Message } from './messages.js';

export interface DecoderEvents {
  message(message: Message): void;
  /** A slice of a body; only valid until the handler returns unless copied (it is a view). */
  body(id: number, data: Buffer): void;
  bodyEnd(id: number): void;
}

/** Which side's bytes this decoder reads: a server decodes what clients send, and vice versa. */
export type DecoderRole = 'server' | 'client';

export type BodyLength = number | 'chunked';

const enum State {
  Header,
  Payload,
  Body,
  ChunkHeader,
  ChunkData,
  /** After a PUT with AWAIT_READY: nothing may arrive until the server answers. */
  AwaitingReady,
}

/**
 * Incremental decoder for one direction of a ferry connection. Pure: it takes bytes from
 * anywhere (a socket, a test) and reports messages and body slices. A body follows a frame
 * by protocol rule (PROTOCOL.md "Bodies"), so the decoder itself knows when bytes are body.
 * Any violation throws ProtocolError; the caller then closes the connection.
 */
export class Decoder {
  private state: State = State.Header;
  private readonly pending: Buffer[] = [];
  private pendingLength = 0;
  private frameType = 0;
  private frameId = 0;
  private payloadLength = 0;
  private bodyId = 0;
  private bodyRemaining = 0;
  private awaitingId = 0;
  /** Set by the consumer while it cannot take more (backpressure); bytes stay buffered. */
  private paused = false;
  /** True while drain() runs: calls made from inside an event handler must not re-enter it. */
  private draining = false;

  constructor(
    private readonly role: DecoderRole,
    private readonly events: DecoderEvents,
  ) {}

  get awaitingReadyFor(): number | undefined {
    return this.state === State.AwaitingReady ? this.awaitingId : undefined;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.pending.push(chunk);
    this.pendingLength += chunk.length;
    this.drain();
  }

  /** Bytes received but not yet decoded (held while paused). */
  get buffered(): number {
    return this.pendingLength;
  }

  /**
   * Replaces the buffered bytes with copies, so the caller may reuse the memory it pushed:
   * they are a partial frame or what arrived while paused (a TLS socket delivers the rest of
   * a read after pause()), a few KiB, not worth a read buffer held for the GC. Returns
   * whether anything was copied.
   */
  detachBuffered(): boolean {
    if (this.pendingLength === 0) return false;
    for (let i = 0; i < this.pending.length; i++) this.pending[i] = Buffer.from(this.pending[i]!);
    return true;
  }

  /**
   * Stops reporting events until `resume()`: the consumer is full. May be called from inside
   * an event handler; the event being handled completes, nothing after it is reported.
   */
  pause(): void {
    this.paused = true;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Reports what was held back; throws ProtocolError like `push`. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.drain();
  }

  /** Server side: the server sent PUT_READY for `id`; `length` body bytes follow now. */
  expectBody(id: number, length: BodyLength): void {
    if (this.state !== State.AwaitingReady || this.awaitingId !== id) {
      throw new Error(`decoder is not awaiting a body for request ${id}`);
    }
    this.beginBody(id, length);
    this.drain();
  }

  /** Server side: the PUT that was awaiting READY was refused; no body will follow. */
  cancelAwait(id: number): void {
    if (this.state === State.AwaitingReady && this.awaitingId === id) {
      this.state = State.Header;
      this.drain();
    }
  }

  private beginBody(id: number, length: BodyLength): void {
    this.bodyId = id;
    if (length === 'chunked') {
      this.state = State.ChunkHeader;
    } else if (length === 0) {
      this.state = State.Header;
      this.events.bodyEnd(id);
    } else {
      this.bodyRemaining = length;
      this.state = State.Body;
    }
  }

  /** Removes exactly `count` buffered bytes, copying only when they span chunks. */
  private take(count: number): Buffer {
    const first = this.pending[0];
    if (first !== undefined && first.length >= count) {
      const out = first.subarray(0, count);
      if (first.length === count) this.pending.shift();
      else this.pending[0] = first.subarray(count);
      this.pendingLength -= count;
      return out;
    }
    const out = Buffer.allocUnsafe(count);
    let filled = 0;
    while (filled < count) {
      const head = this.pending[0]!;
      const n = Math.min(head.length, count - filled);
      head.copy(out, filled, 0, n);
      filled += n;
      if (n === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(n);
    }
    this.pendingLength -= count;
    return out;
  }

  /** Removes up to `max` bytes from the first buffered chunk without copying. */
  private takeSome(max: number): Buffer {
    const head = this.pending[0]!;
    if (head.length <= max) {
      this.pending.shift();
      this.pendingLength -= head.length;
      return head;
    }
    this.pending[0] = head.subarray(max);
    this.pendingLength -= max;
    return head.subarray(0, max);
  }

  /** Decodes what is buffered; re-entrant calls (from an event handler) return at once. */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      this.drainLoop();
    } finally {
      this.draining = false;
    }
  }

  private drainLoop(): void {
    for (;;) {
      if (this.paused) return;
      // A zero-length payload completes with no bytes buffered, so only Payload may run on empty.
      if (this.pendingLength === 0 && this.state !== State.Payload) return;
      switch (this.state) {
        case State.Header: {
          if (this.pendingLength < HEADER_SIZE) return;
          const header = this.take(HEADER_SIZE);
          this.payloadLength = header.readUInt32BE(0);
          this.frameType = header.readUInt8(4);
          this.frameId = header.readUInt32BE(5);
          if (this.payloadLength > MAX_CONTROL_PAYLOAD) {
            throw new ProtocolError(
              `frame payload of ${this.payloadLength} bytes exceeds the ${MAX_CONTROL_PAYLOAD}-byte limit`,
            );
          }
          this.state = State.Payload;
          break;
        }
        case State.Payload: {
          if (this.pendingLength < this.payloadLength) return;
          const payload = this.take(this.payloadLength);
          this.state = State.Header;
          this.onFrame(decodePayload(this.frameType, this.frameId, payload));
          break;
        }
        case State.Body: {
          const data = this.takeSome(this.bodyRemaining);
          this.bodyRemaining -= data.length;
          if (this.bodyRemaining === 0) this.state = State.Header;
          this.events.body(this.bodyId, data);
          if (this.bodyRemaining === 0) this.events.bodyEnd(this.bodyId);
          break;
        }
        case State.ChunkHeader: {
          if (this.pendingLength < 4) return;
          const length = this.take(4).readUInt32BE(0);
          if (length > MAX_CHUNK_SIZE) {
            throw new ProtocolError(`body chunk of ${length} bytes exceeds the ${MAX_CHUNK_SIZE}-byte limit`);
          }
          if (length === 0) {
            this.state = State.Header;
            this.events.bodyEnd(this.bodyId);
          } else {
            this.bodyRemaining = length;
            this.state = State.ChunkData;
          }
          break;
        }
        case State.ChunkData: {
          const data = this.takeSome(this.bodyRemaining);
          this.bodyRemaining -= data.length;
          if (this.bodyRemaining === 0) this.state = State.ChunkHeader;
          this.events.body(this.bodyId, data);
          break;
        }
        case State.AwaitingReady:
          throw new ProtocolError(`bytes sent before PUT_READY for request ${this.awaitingId}`);
      }
    }
  }

  private onFrame(message: Message): void {
    if (this.role === 'server' && message.type === 'PUT') {
      // Dispatch first so the handler sees the PUT before any of its body.
      if (message.flags & PutFlag.AWAIT_READY) {
        this.awaitingId = message.id;
        this.state = State.AwaitingReady;
        this.events.message(message);
      } else {
        this.events.message(message);
        this.beginBody(message.id, message.flags & PutFlag.CHUNKED ? 'chunked' : message.size);
      }
      return;
    }
    if (this.role === 'client' && message.type === 'GET_OK') {
      this.events.message(message);
      this.beginBody(message.id, message.size - message.offset);
      return;
    }
    if (!isAllowedFor(this.role, message.type)) {
      throw new ProtocolError(`${message.type} may not be sent by the ${this.role === 'server' ? 'client' : 'server'}`);
    }
    this.events.message(message);
  }
}

function isAllowedFor(role: DecoderRole, type: Message['type']): boolean {
  const fromServer = MessageType[type] >= 0x80;
  return role === 'client' ? fromServer : !fromServer;
}
