import type net from 'node:net';
import { Deadline, systemClock, type Clock } from '../clock.js';
import { FerryError, ProtocolError, wireErrorName, type ErrorCode } from '../errors.js';
import {
  Decoder,
  encodeMessage,
  entryWireSize,
  HelloFlag,
  nameProblem,
  printableName,
  PROTOCOL_VERSION,
  ServerFlag,
  type Message,
  type MessageOf,
} from '../protocol/index.js';
import { blake3Available, type DigestAlgorithm } from '../io/digest.js';
import { Outbox } from '../transport/outbox.js';
import { looksLikeTls } from '../transport/tls.js';
import { openTransport, transportError } from './open-socket.js';
import { NO_RELEASE, SlabReader } from '../transport/read-slab.js';
import { RequestIds } from './request-ids.js';

export interface TlsClientOptions {
  /** Accept only the certificate with this fingerprint (`SHA256:<base64>`); no CA or known_hosts check. */
  fingerprint?: string;
  /** Extra CA certificates (PEM) trusted besides the system's. */
  ca?: string | Buffer | (string | Buffer)[];
  /**
   * Trust on first use for servers no CA vouches for: the known_hosts file to use (default:
   * `$XDG_CONFIG_HOME/ferry/known_hosts` or `~/.config/ferry/known_hosts`); false turns it
   * off, so such servers are refused.
   */
  knownHosts?: string | false;
  /** Told when a server's fingerprint is remembered for the first time (the CLI prints it). */
  onNewHost?: (info: { server: string; fingerprint: string; file: string }) => void;
  /** Name for SNI and certificate checks (default: host). */
  servername?: string;
}

/** Largest listing (sum of its entries' wire sizes) a client accepts by default. */
export const DEFAULT_MAX_LISTING_BYTES = 64 * 1024 * 1024;

/** The one-line texts for refusals about tokens (the server's own wording is not shown). */
const AUTH_TEXT: Partial<Record<ErrorCode, string>> = {
  AUTH_REQUIRED: 'authentication required: the server needs a token (set FERRY_TOKEN or use --token-file FILE)',
  AUTH_FAILED: 'token not accepted by the server',
  READ_ONLY: 'read-only token: it may list, stat and get, but not put or remove',
};

export interface ConnectOptions {
  host?: string;
  port?: number;
  /** Name sent in HELLO (shown in server logs). */
  clientName?: string;
  /**
   * Connect and handshake deadline (absolute), and the longest silence tolerated while a
   * request is in progress: no byte received and no body byte written for this long fails
   * every call on the connection with TIMEOUT (ms, default 30 000).
   */
  timeoutMs?: number;
  /** Speak TLS (PROTOCOL.md §9): true for CA verification, else trust on first use; or options. */
  tls?: boolean | TlsClientOptions;
  /** Bearer token sent in AUTH right after the handshake (PROTOCOL.md §8). */
  token?: string;
  /** Refuse a listing larger than this many bytes on the wire (default 64 MiB). */
  maxListingBytes?: number;
  /** Time source for every deadline of the connection (tests pass a manual clock). */
  clock?: Clock;
  /**
   * 'auto' (default): offer BLAKE3 when its native binding loads, and verify with whatever the
   * server picks; 'sha256': offer nothing else (PROTOCOL.md §11).
   */
  digest?: 'auto' | 'sha256';
}


/** How a connection is used, beyond what the caller asked for (not part of the public API). */
export interface OpenPurpose {
  /**
   * false: this connection only lists and stats, showing the server's digests and computing
   * none, so it offers BLAKE3 whether or not the native binding loads here (and never loads it).
   */
  computesDigests?: boolean;
}

/** How long close() waits for the server to close after the client's FIN. */
const CLOSE_GRACE_MS = 2000;

/** Receives what the server sends for one request id. */
export interface RequestHandler {
  message(message: Message): void;
  /**
   * A body slice. A handler that keeps `data` beyond the call and can tell when it is done with
   * it calls `hold()` and later the function it returns, so the read buffer can be reused; a
   * slice kept without `hold` is left to the GC.
   */
  body?(data: Buffer, hold: () => () => void): void;
  bodyEnd?(): void;
  fail(error: FerryError): void;
  /** A listing consumed as it arrives: the listing size cap does not apply (listing.ts). */
  streaming?: boolean;
}

/**
 * A handshaken connection to a ferry server: routes replies to requests by id, and turns
 * any transport failure into one FerryError that every pending and later request receives.
 */
export class Connection {
  readonly outbox: Outbox;
  private readonly handlers = new Map<number, RequestHandler>();
  private readonly decoder: Decoder;
  private readonly ids = new RequestIds();
  private failure: FerryError | undefined;
  /** Armed while a request is in progress; any byte moving pushes it back. */
  private silence: Deadline | undefined;
  private paused = false;
  serverName = '';
  /** Protocol version agreed with the server. */
  version = PROTOCOL_VERSION;
  /** The digest every transfer on this connection is verified with (PROTOCOL.md §11). */
  algorithm: DigestAlgorithm = 'sha256';
  maxFileSize = 0;
  /** The server requires a token (SERVER_HELLO flag). */
  authRequired = false;
  private maxListingBytes = DEFAULT_MAX_LISTING_BYTES;
  /** The socket (TCP or TLS) reads into slabs through this (set before the handshake). */
  private reader: SlabReader | undefined;
  /** Listing bytes received so far, per LIST request id. */
  private readonly listed = new Map<number, number>();
  /** Set when the decoder hands a body slice on: the read buffer's bytes are referenced. */
  private bodyHandedOn = false;

  private constructor(
    readonly socket: net.Socket,
    readonly clock: Clock,
  ) {
    this.outbox = new Outbox(socket);
    this.decoder = new Decoder('client', {
      message: (message) => this.route(message),
      body: (id, data) => {
        let held = false;
        const hold = (): (() => void) => {
          held = true;
          return this.reader?.retain(data) ?? NO_RELEASE;
        };
        this.handlers.get(id)?.body?.(data, hold);
        if (!held) this.bodyHandedOn = true;
      },
      bodyEnd: (id) => this.handlers.get(id)?.bodyEnd?.(),
    });
  }

  /**
   * Connects and handshakes, offering this client's protocol version; a server that answers
   * VERSION (it speaks only older ones) is asked again with 6, then 5, 4, then 2 (ferry 0.1).
   */
  static async open(options: ConnectOptions = {}, purpose: OpenPurpose = {}): Promise<Connection> {
    for (let offered = PROTOCOL_VERSION; ; ) {
      try {
        return await Connection.openOffering(options, purpose, offered);
      } catch (error) {
        // A version-6 or 5 server is asked with its version, a version-4 one (ferry 0.2–0.4)
        // with 4, a version-2 one (ferry 0.1) with 2.
        const older = offered > 6 ? 6 : offered > 5 ? 5 : offered > 4 ? 4 : offered > 2 ? 2 : undefined;
        if (!(error instanceof FerryError && error.code === 'VERSION') || older === undefined) throw error;
        offered = older;
      }
    }
  }

  private static async openOffering(options: ConnectOptions, purpose: OpenPurpose, offered: number): Promise<Connection> {
    const host = options.host ?? '127.0.0.1';
    const port = options.port ?? 4455;
    const timeoutMs = options.timeoutMs ?? 30_000;
    const clock = options.clock ?? systemClock;
    const where = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    // One absolute deadline for connect, TLS, HELLO and AUTH: a trickling server cannot stretch it.
    let expire: (() => void) | undefined;
    let timedOut = false;
    const timer = clock.setTimer(timeoutMs, () => {
      timedOut = true;
      expire?.();
    });
    const timeoutError = (): FerryError =>
      new FerryError('TIMEOUT', `no answer from ${where} within ${timeoutMs / 1000} s: is a ferry server running there?`, { fatal: true });
    try {
      const reader = new SlabReader();
      const offerBlake3 = offered >= 4 && options.digest !== 'sha256' && (purpose.computesDigests === false || blake3Available());
      const hello = encodeMessage({ type: 'HELLO', id: 0, version: offered, clientName: options.clientName ?? 'ferry-client', flags: (offerBlake3 ? HelloFlag.BLAKE3 : 0) | HelloFlag.WORKING });
      const socket = await openTransport(host, port, where, options, (cancel) => (expire = cancel), timeoutError, reader, hello);
      if (timedOut) {
        socket.destroy();
        throw timeoutError();
      }
      const connection = new Connection(socket, clock);
      connection.reader = reader;
      connection.maxListingBytes = options.maxListingBytes ?? DEFAULT_MAX_LISTING_BYTES;
      expire = () => connection.destroy(timeoutError());
      try {
        return await connection.handshake(options, where, timeoutMs, offered, offerBlake3);
      } catch (error) {
        // Whatever ended the handshake (a refusal, a stranger, a bad answer): the socket goes too.
        connection.destroy(error instanceof FerryError ? error : new FerryError('CONNECTION', String(error), { fatal: true }));
        throw error;
      }
    } finally {
      timer.cancel();
    }
  }

  /**
   * Awaits the answer to HELLO (already sent by openTransport), then sends AUTH when a token is
   * given; the caller's deadline destroys the connection.
   */
  private async handshake(options: ConnectOptions, where: string, timeoutMs: number, offered: number, offerBlake3: boolean): Promise<Connection> {
    const socket = this.socket;
    this.silence = new Deadline(this.clock, timeoutMs, () => this.onSilence(timeoutMs));
    let greeted = false;
    let first = true;
    const hello = new Promise<MessageOf<'SERVER_HELLO'>>((resolve, reject) => {
      this.handlers.set(0, {
        message: (message) => {
          if (message.type === 'SERVER_HELLO') resolve(message);
          else if (message.type === 'ERROR') reject(remoteError(message, `${where} refused the connection`));
          else reject(new ProtocolError(`expected SERVER_HELLO, got ${message.type}`));
        },
        fail: reject,
      });
    });
    /** Decodes a chunk; returns true when a reference to it may outlive the call. */
    const receive = (chunk: Buffer): boolean => {
      this.silence?.touch();
      const wasFirst = first;
      first = false;
      if (wasFirst && looksLikeTls(chunk)) {
        this.destroy(new FerryError('CONNECTION', `${where} speaks TLS: connect with --tls`, { fatal: true }));
        return true;
      }
      this.bodyHandedOn = false;
      try {
        this.decoder.push(chunk);
      } catch (error) {
        this.destroy(error instanceof FerryError ? error : new ProtocolError(String(error)));
        return true;
      }
      // Control payloads are decoded into copies, and so is what the decoder keeps; a body
      // slice handed on without `hold` is the one reference that may escape.
      this.decoder.detachBuffered();
      return this.bodyHandedOn;
    };
    if (this.reader) this.reader.attach(receive);
    else socket.on('data', receive);
    socket.on('error', (error: NodeJS.ErrnoException) => this.destroy(transportError(error, where)));
    socket.on('close', () => {
      const hint = greeted ? '' : options.tls ? ' during the handshake' : ' during the handshake (if it serves TLS, connect with --tls)';
      this.destroy(new FerryError('CLOSED', `the server at ${where} closed the connection${hint}`, { fatal: true }));
    });
    const server = await hello;
    greeted = true;
    this.handlers.delete(0);
    this.handlers.set(0, { message: (m) => this.onConnectionMessage(m), fail: () => undefined });
    if (server.version < 1 || server.version > offered) {
      const error = new ProtocolError(`the server answered with protocol ${server.version}, which this client did not offer`);
      this.destroy(error);
      throw error;
    }
    if (server.flags & ServerFlag.BLAKE3 && !offerBlake3) {
      const error = new ProtocolError('the server chose BLAKE3, which this client did not offer');
      this.destroy(error);
      throw error;
    }
    this.algorithm = server.flags & ServerFlag.BLAKE3 ? 'blake3' : 'sha256';
    this.serverName = server.serverName;
    this.version = server.version;
    this.maxFileSize = server.maxFileSize;
    this.authRequired = (server.flags & ServerFlag.AUTH_REQUIRED) !== 0;
    if (options.token !== undefined) {
      await this.authenticate(options.token);
    } else if (this.authRequired) {
      const error = new FerryError('AUTH_REQUIRED', AUTH_TEXT.AUTH_REQUIRED ?? 'authentication required', { fatal: true });
      this.destroy(error);
      throw error;
    }
    return this;
  }

  /** Sends AUTH and waits for its verdict; a refusal closes the connection. */
  private authenticate(token: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let id = 0;
      try {
        id = this.register({
          message: (message) => {
            this.release(id);
            if (message.type === 'OK') return resolve();
            const error = message.type === 'ERROR' ? remoteError(message) : new ProtocolError(`unexpected ${message.type} for AUTH`);
            this.destroy(new FerryError(error.code, error.message, { fatal: true }));
            reject(error);
          },
          fail: reject,
        });
        this.send({ type: 'AUTH', id, token });
      } catch (error) {
        reject(error);
      }
    });
  }

  /**
   * Allocates a request id (never 0, never one in use) and registers its handler; throws the
   * connection's failure if any. The silence deadline runs while any request is registered.
   */
  register(handler: RequestHandler): number {
    if (this.failure) throw this.failure;
    const id = this.ids.take();
    this.handlers.set(id, handler);
    if (!this.paused) this.silence?.start(); // counts from now; arms the timer if no request had
    return id;
  }

  /** Frees a request's id once nothing more will be sent or received for it. */
  release(id: number): void {
    if (id === 0 || !this.handlers.delete(id)) return;
    this.ids.release(id);
    this.listed.delete(id);
    if (this.ids.size === 0) this.silence?.stop();
  }

  /** A body byte reached the socket: the connection is not silent. */
  touch(): void {
    this.silence?.touch();
  }

  send(message: Message): void {
    if (this.failure) throw this.failure;
    this.outbox.frame(encodeMessage(message));
  }

  /**
   * Backpressure from a local sink: stop reading the socket until `resume`. The server is not
   * silent while we are not reading, so the silence deadline waits too (a listing piped into a
   * pager may sit for minutes).
   */
  pause(): void {
    this.paused = true;
    this.socket.pause();
    this.silence?.stop();
  }

  resume(): void {
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
      if (this.ids.size > 0 && this.failure === undefined) this.silence?.start();
    }
  }

  private route(message: Message): void {
    const handler = this.handlers.get(message.id);
    if (handler === undefined) {
      throw new ProtocolError(`reply for unknown request id ${message.id}`);
    }
    // Every name a server sends is hostile input (PROTOCOL.md §6), whatever the request.
    const named = message.type === 'ENTRIES' ? message.entries : message.type === 'ENTRY' || message.type === 'PUT_OK' ? [message.entry] : [];
    const renamed = message.type === 'BATCH_RESULTS' ? message.results.flatMap((r) => (r.status === 'stored' && r.name !== undefined ? [{ name: r.name }] : [])) : [];
    for (const entry of [...named, ...renamed]) {
      const problem = nameProblem(entry.name);
      if (problem !== undefined) throw new ProtocolError(`server sent an unusable name "${printableName(entry.name)}": ${problem}`);
    }
    if (message.type === 'ENTRIES' && handler.streaming !== true) {
      // A peer's listing can only be as large as we allow, whatever it claims.
      let total = this.listed.get(message.id) ?? 0;
      for (const entry of message.entries) total += entryWireSize(entry);
      if (total > this.maxListingBytes) {
        throw new ProtocolError(`the server sent a listing over ${Math.round(this.maxListingBytes / 1048576)} MiB: refused`);
      }
      this.listed.set(message.id, total);
    }
    handler.message(message);
  }

  private onConnectionMessage(message: Message): void {
    if (message.type === 'WORKING') return; // its bytes restarted the silence deadline: all it is for
    if (message.type === 'ERROR') {
      const error = remoteError(message, 'server closed the connection');
      this.destroy(new FerryError(error.code, error.message, { fatal: true }));
    } else {
      throw new ProtocolError(`unexpected ${message.type} with request id 0`);
    }
  }

  private onSilence(timeoutMs: number): void {
    if (this.ids.size > 0) {
      this.destroy(new FerryError('TIMEOUT', `the server sent nothing for ${timeoutMs / 1000} s`, { fatal: true }));
    }
  }

  /** Fails every pending request with `error` and closes the socket; idempotent. */
  destroy(error: FerryError): void {
    if (this.failure) return;
    this.failure = error.fatal ? error : new FerryError(error.code, error.message, { fatal: true, cause: error });
    this.silence?.stop();
    this.outbox.close();
    this.socket.destroy();
    const handlers = [...this.handlers.values()];
    this.handlers.clear();
    for (const handler of handlers) handler.fail(this.failure);
  }

  /** The failure that ended the connection, if it has ended. */
  get failed(): FerryError | undefined {
    return this.failure;
  }

  /** Half-closes after everything queued is written, then waits for the server to close. */
  async close(): Promise<void> {
    if (this.failure || this.socket.destroyed) return;
    await this.outbox.enqueue(async () => undefined).catch(() => undefined);
    if (this.failure || this.socket.destroyed) return;
    await new Promise<void>((resolve) => {
      const grace = this.clock.setTimer(CLOSE_GRACE_MS, () => {
        this.socket.destroy();
        resolve();
      });
      this.socket.once('close', () => {
        grace.cancel();
        resolve();
      });
      this.socket.end();
    });
    this.silence?.stop();
  }
}


/**
 * A server's refusal as a FerryError. Its text is the server's, so it is made printable and
 * short (a hostile server must not drive the terminal); token refusals get fixed wording.
 */
export function remoteError(message: MessageOf<'ERROR'>, context?: string): FerryError {
  const code = wireErrorName(message.code);
  const text = printableName(message.message.length > 300 ? `${message.message.slice(0, 300)}…` : message.message);
  if (code === undefined) return new FerryError('INTERNAL', `server error ${message.code}: ${text}`);
  const fixed = AUTH_TEXT[code];
  if (fixed !== undefined) return new FerryError(code, fixed);
  if (code === 'BUSY') return new FerryError(code, `server busy: ${text}`);
  return new FerryError(code, context === undefined ? text : `${context}: ${text}`);
}
