import type { Socket } from 'node:net';
import { Deadline, type Timer } from '../clock.js';
import type { DigestAlgorithm } from '../io/digest.js';
import { FerryError, ProtocolError, WireErrorCode, type WireErrorName } from '../errors.js';
import { Decoder, encodeMessage, ListFlag, MAX_LIST_PAGE, type Message } from '../protocol/index.js';
import { mapFsError } from '../storage/store.js';
import { Outbox } from '../transport/outbox.js';
import { NO_RELEASE, type SlabReader } from '../transport/read-slab.js';
import { looksLikeTls } from '../transport/tls.js';
import { putBatch } from './batches.js';
import { getBatch } from './get-batches.js';
import { Downloads } from './downloads.js';
import { RequestMeter } from './events.js';
import { Handshake } from './handshake.js';
import type { SessionContext, SessionIo } from './session-io.js';
import { toWire, Uploads } from './uploads.js';

export type { SessionContext, SessionLimits } from './session-io.js';

/** Why a paged LIST (v7) is refused: it lists one folder, at most MAX_LIST_PAGE entries a page. */
function pageProblem(flags: number, limit: number): FerryError | undefined {
  if (flags & ListFlag.RECURSIVE) return new FerryError('UNSUPPORTED', 'a paged LIST lists one folder: PAGE cannot be combined with RECURSIVE');
  if (limit < 1 || limit > MAX_LIST_PAGE) return new FerryError('PROTOCOL', `a page of ${limit} entries: give 1 to ${MAX_LIST_PAGE}`);
  return undefined;
}

/** LIST and DELETE flag bits this server knows; others are refused with UNSUPPORTED (LIST's PAGE from v7). */
const KNOWN_LIST_FLAGS: number = ListFlag.RECURSIVE;
/** After a fatal error, how long the peer has to take our last words before the socket is destroyed. */
const LINGER_MS = 2000;
/** WORKING's period (PROTOCOL.md §3.1): well inside a client's silence deadline (ferry's default: 30 s). */
const WORKING_EVERY_MS = 5000;
const WORKING_FRAME = encodeMessage({ type: 'WORKING', id: 0 });

/**
 * One client connection, and the single owner of its state: what may be read (flow control),
 * by when the peer must act (deadlines), and what is released when it ends.
 *
 * - Reading stops while too many requests are in flight, while replies the peer has not read
 *   pile up, while an upload's temporary is being opened and while the disk is behind; it
 *   resumes when the reason is gone. So memory per connection is bounded whatever the peer
 *   sends or fails to read.
 * - The peer must make progress — send bytes or take ours — within the idle timeout whenever
 *   it owes something or nothing is going on; silence while the server itself works is not
 *   held against it. HELLO (and AUTH) have an absolute deadline.
 * - Anything thrown while handling this connection closes this connection only.
 */

export class Session implements SessionIo {
  readonly decoder: Decoder;
  readonly outbox: Outbox;
  readonly peer: string;
  readonly remoteAddress: string;
  /** Resolves when the connection has closed and every upload is cleaned up. */
  readonly finished: Promise<void>;
  private resolveFinished!: () => void;
  private readonly handshake: Handshake;
  private readonly uploads: Uploads;
  private readonly downloads: Downloads;
  private readonly pauseReasons = new Set<string>();
  private readonly idle: Deadline;
  private inFlight = 0;
  /** Server-side operations under way (disk, hashing): the peer is not blamed for silence. */
  private serverWork = 0;
  private isClosed = false;
  private stopping = false;
  private peerEnded = false;
  private lingerTimer: Timer | undefined;
  private workingTimer: Timer | undefined;
  private readonly meter: RequestMeter;

  /**
   * `reader`: the socket reads into its slabs (`onread`, see transport/adopt-socket.ts), and
   * upload bodies are held there until written; without it the socket emits 'data'.
   */
  constructor(
    private readonly socket: Socket,
    readonly ctx: SessionContext,
    private readonly reader?: SlabReader,
  ) {
    this.remoteAddress = socket.remoteAddress ?? '?';
    this.peer = `${this.remoteAddress}:${socket.remotePort ?? '?'}`;
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
    this.meter = new RequestMeter(ctx.events, ctx.clock);
    this.outbox = new Outbox(
      socket,
      () => this.guard(() => this.updateFlow()),
      () => this.idle.touch(), // the peer took our bytes: progress
    );
    this.decoder = new Decoder('server', {
      message: (message) => this.onMessage(message),
      body: (id, data) => this.uploads.body(id, data, () => this.reader?.retain(data) ?? NO_RELEASE),
      bodyEnd: (id) => this.uploads.bodyEnd(id),
    });
    this.handshake = new Handshake(this);
    this.uploads = new Uploads(this);
    this.downloads = new Downloads(this);
    this.idle = new Deadline(ctx.clock, ctx.limits.idleTimeoutMs, () => this.guard(() => this.onIdleDeadline()));
    this.idle.start();
    socket.setNoDelay(true);
    let first = true;
    const receive = (chunk: Buffer): void => {
      this.idle.touch();
      if (first) {
        first = false;
        if (!ctx.tls && looksLikeTls(chunk)) {
          this.fail(new ProtocolError('a TLS handshake on a plaintext port (this server does not serve TLS)'));
          return;
        }
      }
      this.guard(() => this.decoder.push(chunk));
    };
    // Body slices are held (retain) or dropped, and what the decoder keeps it copies: no
    // reference to a read buffer escapes.
    if (reader) {
      reader.attach((chunk) => {
        receive(chunk);
        this.decoder.detachBuffered();
        return false;
      });
    } else {
      socket.on('data', receive);
    }
    socket.on('drain', () => this.guard(() => this.updateFlow()));
    socket.on('end', () => this.guard(() => this.onPeerEnd()));
    socket.on('error', (error) => ctx.log.debug({ peer: this.peer, err: error.message }, 'socket error'));
    socket.on('close', () => void this.onClose());
  }

  get closed(): boolean {
    return this.isClosed;
  }

  get version(): number {
    return this.handshake.version;
  }

  get algorithm(): DigestAlgorithm {
    return this.handshake.algorithm;
  }

  /** Work in flight: requests being answered or uploads under way. */
  get busy(): boolean {
    return this.inFlight > 0 || this.uploads.count > 0;
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Server shutdown: close now if quiet, otherwise as soon as the work in flight is done. */
  closeWhenIdle(): void {
    this.stopping = true;
    this.settle();
  }

  // ── SessionIo ───────────────────────────────────────────────────────────────────────────

  send(message: Message): void {
    this.meter.replied(message);
    this.outbox.frame(encodeMessage(message));
    if (this.outbox.backlog > this.ctx.limits.maxBacklogBytes) this.pause('backlog');
  }

  sendError(id: number, error: unknown): void {
    const mapped = mapFsError(error);
    if (mapped instanceof FerryError && mapped.code in WireErrorCode) {
      if (mapped.code === 'BUSY') this.ctx.log.warn({ peer: this.peer, err: mapped.message }, 'refused: server busy');
      this.send({ type: 'ERROR', id, code: WireErrorCode[mapped.code as WireErrorName], message: mapped.message });
      return;
    }
    this.ctx.log.error({ peer: this.peer, err: mapped }, 'internal error');
    this.send({ type: 'ERROR', id, code: WireErrorCode.INTERNAL, message: 'internal server error' });
  }

  fail(error: unknown): void {
    if (this.isClosed) return;
    this.isClosed = true;
    const reason = error instanceof Error ? error.message : String(error);
    this.ctx.log.warn({ peer: this.peer, reason }, 'closing connection');
    this.idle.stop();
    this.handshake.dispose();
    if (this.socket.destroyed) return;
    try {
      this.sendError(0, error instanceof FerryError ? error : new ProtocolError(reason));
    } catch {
      // our last words could not even be encoded: just close
    }
    this.outbox.close();
    this.socket.end();
    // A peer that never reads must not keep the socket (and its uploads) for long.
    this.lingerTimer = this.ctx.clock.setTimer(LINGER_MS, () => this.socket.destroy());
  }

  guard(step: () => void): void {
    try {
      step();
    } catch (error) {
      this.fail(error);
    }
  }

  track(work: Promise<unknown>): void {
    this.inFlight++;
    this.updateFlow();
    void work
      .catch((error: unknown) => this.fail(error)) // a request's failure that escaped its reply
      .finally(() => {
        this.inFlight--;
        this.guard(() => {
          this.updateFlow();
          this.settle();
        });
      });
  }

  working<T>(work: Promise<T>): Promise<T> {
    if (this.serverWork++ === 0 && this.handshake.takesWorking) this.armWorking();
    return work.finally(() => {
      if (--this.serverWork === 0) this.stopWorking();
      this.idle.touch(); // the countdown for the peer starts when our part is done
    });
  }

  /**
   * While the server works on this connection's requests (hashing a large file with no record,
   * a slow disk, a wait for a file slot), a client that asked for them hears WORKING every
   * WORKING_EVERY_MS, so its silence deadline does not give up on a server that is busy for it.
   */
  private armWorking(): void {
    this.workingTimer ??= this.ctx.clock.setTimer(WORKING_EVERY_MS, () => {
      this.workingTimer = undefined;
      if (this.isClosed || this.serverWork === 0) return;
      this.outbox.frameOutOfTurn(WORKING_FRAME); // skipped mid-body: the body's bytes are news enough
      this.armWorking();
    });
  }

  private stopWorking(): void {
    this.workingTimer?.cancel();
    this.workingTimer = undefined;
  }

  pause(reason: string): void {
    this.pauseReasons.add(reason);
    this.decoder.pause();
    this.socket.pause();
  }

  resume(reason: string): void {
    this.pauseReasons.delete(reason);
    if (this.pauseReasons.size > 0 || this.isClosed) return;
    this.decoder.resume(); // may dispatch held requests, which may pause again
    if (this.pauseReasons.size === 0 && !this.isClosed) this.socket.resume();
  }

  // ── flow control and deadlines ──────────────────────────────────────────────────────────

  /** Pauses or resumes reading for in-flight requests and unread replies. */
  private updateFlow(): void {
    const { maxInFlight, maxBacklogBytes } = this.ctx.limits;
    if (this.inFlight + this.uploads.count >= maxInFlight) this.pause('in-flight');
    else if (this.pauseReasons.has('in-flight')) this.resume('in-flight');
    if (this.outbox.backlog > maxBacklogBytes) this.pause('backlog');
    else if (this.pauseReasons.has('backlog')) this.resume('backlog');
    if (this.peerEnded) this.settle();
  }

  /** True while the server, not the peer, is the one to act (disk, hashing, opening files). */
  private get serverIsActing(): boolean {
    if (this.serverWork > 0) return true;
    for (const reason of this.pauseReasons) if (reason.startsWith('sink-') || reason.startsWith('put-setup-')) return true;
    return false;
  }

  /**
   * No progress for the idle timeout: the peer sent nothing and took none of our bytes (every
   * write's completion touches the deadline). Close — unless the server itself is acting.
   */
  private onIdleDeadline(): void {
    if (this.isClosed) return;
    if (this.serverIsActing) {
      this.idle.start();
      return;
    }
    const seconds = this.ctx.limits.idleTimeoutMs / 1000;
    const owed = this.uploads.owingBody;
    const reason =
      owed !== undefined
        ? `no body bytes for request ${owed} for ${seconds} s`
        : this.outbox.tasks > 0 || this.socket.writableLength > 0
          ? `the client read nothing for ${seconds} s`
          : `idle for ${seconds} s`;
    this.fail(new FerryError('TIMEOUT', reason));
  }

  /** The peer half-closed: it sends nothing more; finish what it asked for, then close. */
  private onPeerEnd(): void {
    this.peerEnded = true;
    if (this.decoder.buffered > 0 || this.uploads.owingBody !== undefined) {
      this.ctx.log.debug({ peer: this.peer }, 'client closed mid-request');
    }
    this.settle();
  }

  /** Closes once quiet when the server is stopping or the peer has said its last word. */
  private settle(): void {
    if (this.isClosed || this.socket.destroyed) return;
    // Everything the peer sent before its FIN has been read: uploads it never finished are dead.
    if (this.peerEnded && !this.decoder.isPaused) this.uploads.cutOff();
    if (!(this.stopping || this.peerEnded) || this.busy) return;
    this.isClosed = true;
    this.idle.stop();
    this.handshake.dispose();
    this.socket.end(); // flushes replies already written, then FIN
    this.lingerTimer = this.ctx.clock.setTimer(LINGER_MS, () => this.socket.destroy());
  }

  private async onClose(): Promise<void> {
    this.isClosed = true;
    this.idle.stop();
    this.stopWorking();
    this.handshake.dispose();
    this.lingerTimer?.cancel();
    this.meter.closed();
    this.outbox.close();
    try {
      await this.uploads.closeAll();
    } catch (error) {
      this.ctx.log.warn({ peer: this.peer, err: error instanceof Error ? error.message : String(error) }, 'cleanup after close failed');
    }
    this.resolveFinished();
  }

  // ── requests ────────────────────────────────────────────────────────────────────────────

  private onMessage(message: Message): void {
    if (this.isClosed) return;
    const { handshake } = this;
    if (!handshake.greeted) {
      if (message.type !== 'HELLO') throw new ProtocolError(`expected HELLO, got ${message.type}`);
      handshake.hello(message);
      return;
    }
    if (message.type === 'HELLO') throw new ProtocolError('HELLO sent twice');
    if (message.id === 0) throw new ProtocolError(`${message.type} with request id 0 (reserved for the connection)`);
    this.meter.received(message);
    const refusal = handshake.refusal(message);
    if (refusal) {
      if (message.type === 'PUT') this.uploads.refuse(message, refusal);
      else this.sendError(message.id, refusal);
      return;
    }
    const { store, log } = this.ctx;
    switch (message.type) {
      case 'AUTH':
        handshake.auth(message);
        return;
      case 'PUT':
        this.uploads.start(message, handshake.version);
        this.updateFlow();
        return;
      case 'PUT_END':
        this.uploads.end(message);
        return;
      case 'GET':
        this.track(this.meter.whole(message.id, this.downloads.get(message, this.socket)));
        return;
      case 'LIST':
        if (this.unknownFlags(message.id, message.flags, this.version >= 7 ? KNOWN_LIST_FLAGS | ListFlag.PAGE : KNOWN_LIST_FLAGS)) return;
        if (message.flags & ListFlag.PAGE) {
          const problem = pageProblem(message.flags, message.limit ?? 0);
          if (problem !== undefined) {
            this.sendError(message.id, problem);
            return;
          }
        }
        this.track(this.meter.whole(message.id, this.downloads.list(message, this.socket)));
        return;
      case 'STAT':
        this.run(message.id, async () => {
          const entry = await this.working(store.stat(message.name, this.algorithm));
          this.send({ type: 'ENTRY', id: message.id, entry: toWire(entry) });
        });
        return;
      case 'DELETE':
        if (this.unknownFlags(message.id, message.flags)) return;
        this.run(message.id, async () => {
          if (message.flags & ListFlag.RECURSIVE) {
            handshake.requireVersion(2, 'recursive DELETE');
            const count = await this.working(store.removeTree(message.name));
            log.info({ peer: this.peer, name: message.name, count }, 'removed folder');
          } else {
            await this.working(store.remove(message.name));
            log.info({ peer: this.peer, name: message.name }, 'removed');
          }
          this.send({ type: 'OK', id: message.id });
        });
        return;
      case 'PUT_BATCH':
        this.run(message.id, () => putBatch(this, message));
        return;
      case 'GET_BATCH':
        this.track(this.meter.whole(message.id, getBatch(this, message, this.socket)));
        return;
      case 'PROBE_UPLOAD':
        this.run(message.id, async () => {
          handshake.requireVersion(2, 'PROBE_UPLOAD');
          const { offset, digest } = await this.working(store.probeUpload(message.name, message.size, this.algorithm));
          this.send({ type: 'PARTIAL', id: message.id, offset, digest });
        });
        return;
      case 'HASH_PREFIX':
        this.run(message.id, async () => {
          handshake.requireVersion(2, 'HASH_PREFIX');
          const { offset, digest } = await this.working(store.hashPrefix(message.name, message.length, this.algorithm));
          this.send({ type: 'PARTIAL', id: message.id, offset, digest });
        });
        return;
      default:
        throw new ProtocolError(`unexpected ${message.type}`);
    }
  }

  /** Refuses a LIST or DELETE with flag bits this server does not know; true if refused. */
  private unknownFlags(id: number, flags: number, known = KNOWN_LIST_FLAGS): boolean {
    if ((flags & ~known) === 0) return false;
    this.sendError(id, new FerryError('UNSUPPORTED', `unknown flag bits 0x${(flags & ~known).toString(16)}`));
    return true;
  }

  /** Runs a request that replies with one frame; a refusal becomes an ERROR reply. */
  private run(id: number, work: () => Promise<void>): void {
    this.track(
      work().catch((error: unknown) => {
        if (!this.isClosed) this.sendError(id, error);
      }),
    );
  }
}
