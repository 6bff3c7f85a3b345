import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { DigestAlgorithm } from '../io/digest.js';
import type { Decoder, Message } from '../protocol/index.js';
import type { StoreBackend } from '../storage/backend.js';
import type { Outbox } from '../transport/outbox.js';
import type { AuthThrottle, TokenSet } from './auth.js';
import type { ServerEvents } from './events.js';
import type { FileBudget } from './file-budget.js';

export interface SessionLimits {
  /** Absolute deadline for the client's HELLO (and AUTH, with tokens): a trickle cannot hold a slot. */
  handshakeTimeoutMs: number;
  /** Close a connection whose peer made no progress (sent nothing, read nothing) for this long. */
  idleTimeoutMs: number;
  /** Requests one connection may have in progress before the server stops reading it. */
  maxInFlight: number;
  /** Reply bytes the peer has not read after which the server stops reading its requests. */
  maxBacklogBytes: number;
}

export interface SessionContext {
  store: StoreBackend;
  serverName: string;
  limits: SessionLimits;
  log: Logger;
  clock: Clock;
  /** Open files for transfers, shared by every session of the server. */
  files: FileBudget;
  /** With tokens, every request before a successful AUTH is refused (PROTOCOL.md §8). */
  tokens?: TokenSet;
  /** Slows AUTH verdicts for addresses that failed too often; shared by all sessions. */
  throttle?: AuthThrottle;
  /** The connection is TLS (then a ClientHello is not a mistake to report). */
  tls?: boolean;
  /** Whether a version-4 client that offers BLAKE3 gets it (else every digest is SHA-256). */
  blake3: boolean;
  /** Told of each request's answer and each failed AUTH (metrics). */
  events?: ServerEvents;
}

/**
 * What the parts of a session (handshake, uploads, downloads) may do with their connection.
 * One owner — the Session — decides when it is closed, what may be read and by when the peer
 * must act; the parts only ask.
 */
export interface SessionIo {
  readonly ctx: SessionContext;
  readonly peer: string;
  readonly remoteAddress: string;
  readonly decoder: Decoder;
  readonly outbox: Outbox;
  /** The protocol version agreed in the handshake. */
  readonly version: number;
  /** The digest algorithm agreed in the handshake (PROTOCOL.md §11). */
  readonly algorithm: DigestAlgorithm;
  readonly closed: boolean;
  send(message: Message): void;
  /** A refusal of one request: ERROR with its id; the connection stays usable. */
  sendError(id: number, error: unknown): void;
  /** Fatal: tell the peer why (ERROR id 0, best effort) and close. Idempotent. */
  fail(error: unknown): void;
  /** Runs `step` from a callback (a promise, a timer): whatever it throws closes this session only. */
  guard(step: () => void): void;
  /** Counts a request as in flight until `work` settles. */
  track(work: Promise<unknown>): void;
  /** Marks server-side work (disk, hashing): the peer is not blamed for silence meanwhile. */
  working<T>(work: Promise<T>): Promise<T>;
  /** Stops reading the connection for `reason` until `resume(reason)`. */
  pause(reason: string): void;
  resume(reason: string): void;
}
