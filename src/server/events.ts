import type { Clock } from '../clock.js';
import { WireErrorCode } from '../errors.js';
import type { Message } from '../protocol/index.js';

/**
 * What the engine tells observers (the metrics plug-in, …): counts and durations only, never a
 * file name or a token. The engine calls `emit` at a handful of points; with no listener an
 * emit is a map lookup. A listener that throws is reported through `onListenerError` and never
 * reaches a connection.
 */

/** A connection's byte counters (the socket itself): read them at any time, final at `disconnection`. */
export interface Traffic {
  readonly bytesRead: number;
  readonly bytesWritten: number;
}

export interface RequestEvent {
  /** The request's message type: PUT, GET, LIST, STAT, DELETE, PROBE_UPLOAD, HASH_PREFIX, AUTH. */
  type: string;
  /** OK, the wire error name of the refusal (NOT_FOUND, QUOTA, …), or CLOSED when the connection ended first. */
  result: string;
  /** From the request's arrival to its last reply byte handed to the socket (or the close). */
  durationMs: number;
}

export interface ServerEventMap {
  /** A protocol connection was admitted (past the connection limits). */
  connection: Traffic;
  /** That connection closed: its counters are final. */
  disconnection: Traffic;
  /** A request got its final answer. */
  request: RequestEvent;
  /** A token was not accepted. */
  'auth-failed': Record<string, never>;
}

type Listener<K extends keyof ServerEventMap> = (payload: ServerEventMap[K]) => void;

export class ServerEvents {
  private readonly listeners = new Map<keyof ServerEventMap, Set<Listener<never>>>();

  constructor(private readonly onListenerError: (error: unknown) => void = () => undefined) {}

  /** Listens for `event`; the returned function stops listening. */
  on<K extends keyof ServerEventMap>(event: K, listener: Listener<K>): () => void {
    let set = this.listeners.get(event);
    if (set === undefined) this.listeners.set(event, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => set.delete(listener as Listener<never>);
  }

  emit<K extends keyof ServerEventMap>(event: K, payload: ServerEventMap[K]): void {
    const set = this.listeners.get(event);
    if (set === undefined) return;
    for (const listener of set) {
      try {
        (listener as Listener<K>)(payload);
      } catch (error) {
        this.onListenerError(error);
      }
    }
  }
}

const REQUEST_TYPES = new Set(['AUTH', 'PUT', 'GET', 'LIST', 'STAT', 'DELETE', 'PROBE_UPLOAD', 'HASH_PREFIX', 'PUT_BATCH']);
/** Replies that end a request (PUT_READY and more-to-come ENTRIES do not). */
const FINAL_REPLIES = new Set(['PUT_OK', 'ENTRY', 'OK', 'PARTIAL', 'ERROR', 'BATCH_RESULTS']);
const WIRE_NAMES = new Map(Object.entries(WireErrorCode).map(([name, code]) => [code as number, name]));

/**
 * One connection's requests in progress, timed from arrival to final answer and reported as
 * `request` events. Bounded like the requests themselves (the session stops reading past its
 * in-flight cap).
 */
export class RequestMeter {
  private readonly pending = new Map<number, { type: string; at: number }>();

  constructor(
    private readonly events: ServerEvents | undefined,
    private readonly clock: Clock,
  ) {}

  /** A message arrived from the peer. */
  received(message: Message): void {
    if (this.events === undefined || !REQUEST_TYPES.has(message.type) || !('id' in message) || message.id === 0) return;
    this.pending.set(message.id, { type: message.type, at: this.clock.now() });
  }

  /** A frame went to the peer: a final reply ends its request. */
  replied(message: Message): void {
    if (!FINAL_REPLIES.has(message.type) || !('id' in message)) return;
    this.finish(message.id, message.type === 'ERROR' ? (WIRE_NAMES.get(message.code) ?? `CODE_${message.code}`) : 'OK');
  }

  /** A reply written straight to the socket (GET's body, LIST's frames): done once `work` resolves. */
  whole(id: number, work: Promise<void>): Promise<void> {
    return work.then(() => this.finish(id, 'OK'));
  }

  /** The connection ended: what was still in progress never got an answer. */
  closed(): void {
    for (const id of [...this.pending.keys()]) this.finish(id, 'CLOSED');
  }

  private finish(id: number, result: string): void {
    const request = this.pending.get(id);
    if (request === undefined) return;
    this.pending.delete(id);
    this.events?.emit('request', { type: request.type, result, durationMs: this.clock.now() - request.at });
  }
}
