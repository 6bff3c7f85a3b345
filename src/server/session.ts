import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { FerryError, ProtocolError, WireErrorCode, type WireErrorName } from '../errors.js';
import {
  Decoder,
  encodeMessage,
  ENTRIES_OVERHEAD,
  entryWireSize,
  ListFlag,
  MAX_CONTROL_PAYLOAD,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  PutFlag,
  ServerFlag,
  type Message,
  type MessageOf,
  type WireEntry,
} from '../protocol/index.js';
import { mapFsError, type Store, type StoredEntry, type Upload } from '../storage/store.js';
import { sendFileRange } from '../transport/file-body.js';
import { Outbox } from '../transport/outbox.js';
import { looksLikeTls } from '../transport/tls.js';
import { allows, AuthThrottle, MAX_FAILED_ATTEMPTS, permissionFor, type Permission, type TokenSet } from './auth.js';

export interface SessionLimits {
  /** Absolute deadline for the client's HELLO, so a trickle cannot hold a slot. */
  handshakeTimeoutMs: number;
  /** Close a connection that has sent nothing for this long (and has nothing in flight). */
  idleTimeoutMs: number;
  /** Requests one connection may have in progress before its socket is paused. */
  maxInFlight: number;
}

export interface SessionContext {
  store: Store;
  serverName: string;
  limits: SessionLimits;
  log: Logger;
  /** With tokens, every request before a successful AUTH is refused (PROTOCOL.md §8). */
  tokens?: TokenSet;
  /** Slows AUTH verdicts for addresses that failed too often; shared by all sessions. */
  throttle?: AuthThrottle;
  /** The connection is TLS (then a ClientHello is not a mistake to report). */
  tls?: boolean;
}

interface IncomingPut {
  id: number;
  name: string;
  declaredSize: number | undefined;
  /** Set once the temporary file is open. */
  upload: Upload | undefined;
  /** Body bytes that arrived while the temporary was being opened. */
  early: Buffer[];
  bodyDone: boolean;
  /** Set when the put was refused; its remaining body is read and dropped. */
  refused: boolean;
  /** The client's digest from PUT_END, once it has arrived. */
  expectedSha: Buffer | undefined;
}

/** A put whose body is about to arrive; `declaredSize` is undefined for a chunked body. */
function incomingPut(message: MessageOf<'PUT'>, declaredSize: number | undefined): IncomingPut {
  return { id: message.id, name: message.name, declaredSize, upload: undefined, early: [], bodyDone: false, refused: false, expectedSha: undefined };
}

/**
 * One client connection: decodes requests, runs them against the store and writes replies.
 * Requests may be pipelined; replies carry the request id and may complete out of order.
 */
export class Session {
  private readonly decoder: Decoder;
  private readonly outbox: Outbox;
  private readonly puts = new Map<number, IncomingPut>();
  private readonly pauseReasons = new Set<string>();
  private greeted = false;
  /** The protocol version agreed in the handshake. */
  private version = PROTOCOL_VERSION;
  private inFlight = 0;
  private closed = false;
  private handshakeTimer: NodeJS.Timeout | undefined;
  /** What this connection may do: everything without tokens, else what its token grants. */
  private permission: Permission | undefined;
  private authFailures = 0;
  private authTimer: NodeJS.Timeout | undefined;
  readonly peer: string;
  /** Resolves when the connection has closed and every upload is cleaned up. */
  readonly finished: Promise<void>;
  private resolveFinished!: () => void;

  constructor(
    private readonly socket: Socket,
    private readonly ctx: SessionContext,
  ) {
    this.peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
    this.outbox = new Outbox(socket);
    this.decoder = new Decoder('server', {
      message: (message) => this.onMessage(message),
      body: (id, data) => this.onBody(id, data),
      bodyEnd: (id) => this.onBodyEnd(id),
    });
    socket.setNoDelay(true);
    this.permission = ctx.tokens ? undefined : 'write';
    // Absolute: HELLO (and AUTH, with tokens) must be done by then, however the bytes trickle.
    this.handshakeTimer = setTimeout(
      () => this.fail(new FerryError('TIMEOUT', ctx.tokens ? 'no HELLO and AUTH within the handshake deadline' : 'no HELLO within the handshake deadline')),
      ctx.limits.handshakeTimeoutMs,
    );
    let first = true;
    socket.setTimeout(ctx.limits.idleTimeoutMs, () => {
      if (this.inFlight === 0 && this.puts.size === 0) this.fail(new FerryError('TIMEOUT', 'idle timeout'));
    });
    socket.on('data', (chunk: Buffer) => {
      if (first) {
        first = false;
        if (!ctx.tls && looksLikeTls(chunk)) {
          this.fail(new ProtocolError('a TLS handshake on a plaintext port (this server does not serve TLS)'));
          return;
        }
      }
      try {
        this.decoder.push(chunk);
      } catch (error) {
        this.fail(error);
      }
    });
    socket.on('end', () => socket.end());
    socket.on('error', (error) => this.ctx.log.debug({ peer: this.peer, err: error.message }, 'socket error'));
    socket.on('close', () => void this.onClose());
  }

  /** Graceful stop: refuse nothing in flight, but close as soon as the connection is quiet. */
  get busy(): boolean {
    return this.inFlight > 0 || this.puts.size > 0;
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Server shutdown: close now if quiet, otherwise as soon as the work in flight is done. */
  closeWhenIdle(): void {
    this.stopping = true;
    this.settleIfStopping();
  }

  private stopping = false;

  private settleIfStopping(): void {
    if (!this.stopping || this.busy || this.socket.destroyed) return;
    this.closed = true;
    this.socket.end(); // flushes replies already written, then FIN
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private send(message: Message): void {
    this.outbox.frame(encodeMessage(message));
  }

  private sendError(id: number, error: unknown): void {
    const mapped = mapFsError(error);
    if (mapped instanceof FerryError && mapped.code in WireErrorCode) {
      const code = WireErrorCode[mapped.code as WireErrorName];
      this.send({ type: 'ERROR', id, code, message: mapped.message });
      return;
    }
    this.ctx.log.error({ peer: this.peer, err: mapped }, 'internal error');
    this.send({ type: 'ERROR', id, code: WireErrorCode.INTERNAL, message: 'internal server error' });
  }

  /** Fatal: tell the peer why (best effort) and close the connection. */
  private fail(error: unknown): void {
    if (this.closed) return;
    this.closed = true;
    const reason = error instanceof Error ? error.message : String(error);
    this.ctx.log.warn({ peer: this.peer, reason }, 'closing connection');
    if (!this.socket.destroyed) {
      this.sendError(0, error instanceof FerryError ? error : new ProtocolError(reason));
      this.outbox.close();
      this.socket.end();
      // A peer that never reads must not keep the socket (and its upload) forever.
      setTimeout(() => this.socket.destroy(), 2000).unref();
    }
  }

  private pause(reason: string): void {
    this.pauseReasons.add(reason);
    this.socket.pause();
  }

  private resume(reason: string): void {
    this.pauseReasons.delete(reason);
    if (this.pauseReasons.size === 0 && !this.closed) this.socket.resume();
  }

  private track<T>(work: Promise<T>): void {
    this.inFlight++;
    if (this.inFlight >= this.ctx.limits.maxInFlight) this.pause('in-flight');
    void work.finally(() => {
      this.inFlight--;
      if (this.inFlight < this.ctx.limits.maxInFlight) this.resume('in-flight');
      this.settleIfStopping();
    });
  }

  private onMessage(message: Message): void {
    if (this.closed) return;
    if (!this.greeted) {
      if (message.type !== 'HELLO') throw new ProtocolError(`expected HELLO, got ${message.type}`);
      this.onHello(message);
      return;
    }
    if (message.type === 'HELLO') throw new ProtocolError('HELLO sent twice');
    if (!this.authorized(message)) return; // tokens: AUTH first, and only what the token allows
    switch (message.type) {
      case 'AUTH':
        this.onAuth(message);
        return;
      case 'LIST':
        this.run(message.id, () => this.list(message));
        return;
      case 'STAT':
        this.run(message.id, async () => {
          const entry = await this.ctx.store.stat(message.name);
          this.send({ type: 'ENTRY', id: message.id, entry: toWire(entry) });
        });
        return;
      case 'GET':
        this.run(message.id, () => this.get(message));
        return;
      case 'DELETE':
        this.run(message.id, async () => {
          if (message.flags & ListFlag.RECURSIVE) {
            this.requireVersion(2, 'recursive DELETE');
            const count = await this.ctx.store.removeTree(message.name);
            this.ctx.log.info({ peer: this.peer, name: message.name, count }, 'removed folder');
          } else {
            await this.ctx.store.remove(message.name);
            this.ctx.log.info({ peer: this.peer, name: message.name }, 'removed');
          }
          this.send({ type: 'OK', id: message.id });
        });
        return;
      case 'PROBE_UPLOAD':
        this.run(message.id, async () => {
          this.requireVersion(2, 'PROBE_UPLOAD');
          const { offset, sha256 } = await this.ctx.store.probeUpload(message.name, message.size);
          this.send({ type: 'PARTIAL', id: message.id, offset, sha256 });
        });
        return;
      case 'HASH_PREFIX':
        this.run(message.id, async () => {
          this.requireVersion(2, 'HASH_PREFIX');
          const { offset, sha256 } = await this.ctx.store.hashPrefix(message.name, message.length);
          this.send({ type: 'PARTIAL', id: message.id, offset, sha256 });
        });
        return;
      case 'PUT':
        this.onPut(message);
        return;
      case 'PUT_END':
        this.onPutEnd(message);
        return;
      default:
        throw new ProtocolError(`unexpected ${message.type}`);
    }
  }

  /**
   * AUTH (PROTOCOL.md §8). The token is checked at once (in constant time) and never kept or
   * logged; an address that failed too often waits for its verdict. The third failure on a
   * connection closes it.
   */
  private onAuth(message: MessageOf<'AUTH'>): void {
    const tokens = this.ctx.tokens;
    if (!tokens) {
      this.send({ type: 'OK', id: message.id }); // no tokens configured: any token is accepted
      return;
    }
    if (this.authTimer !== undefined) throw new ProtocolError('AUTH sent while another AUTH is in progress');
    const address = this.socket.remoteAddress ?? '?';
    const delay = this.ctx.throttle?.delayFor(address) ?? 0;
    const granted = tokens.check(message.token);
    if (granted === undefined) this.ctx.throttle?.recordFailure(address);
    const verdict = (): void => {
      this.authTimer = undefined;
      if (this.closed) return;
      if (granted !== undefined) {
        this.permission = granted;
        clearTimeout(this.handshakeTimer);
        this.ctx.log.info({ peer: this.peer, permission: granted }, 'authenticated');
        this.send({ type: 'OK', id: message.id });
        return;
      }
      this.authFailures++;
      this.ctx.log.warn({ peer: this.peer, attempt: this.authFailures }, 'token not accepted');
      this.send({ type: 'ERROR', id: message.id, code: WireErrorCode.AUTH_FAILED, message: 'token not accepted' });
      if (this.authFailures >= MAX_FAILED_ATTEMPTS) {
        this.fail(new FerryError('AUTH_FAILED', `${MAX_FAILED_ATTEMPTS} tokens not accepted: closing`));
      }
    };
    if (delay === 0) verdict();
    else this.authTimer = setTimeout(verdict, delay);
  }

  /** Refuses a request its connection may not make; true if it may go ahead. */
  private authorized(message: Message): boolean {
    const needed = permissionFor(message.type);
    if (needed === undefined || allows(this.permission, needed)) return true;
    const error =
      this.permission === undefined
        ? new FerryError('AUTH_REQUIRED', 'authentication required: send AUTH with a token first')
        : new FerryError('READ_ONLY', 'read-only token: it may list, stat and get, not write');
    if (message.type === 'PUT') {
      // Its body still follows (unless it awaits PUT_READY): read and drop it.
      if (this.puts.has(message.id)) throw new ProtocolError(`request id ${message.id} is already in use`);
      if (message.flags & PutFlag.AWAIT_READY) {
        queueMicrotask(() => this.decoder.cancelAwait(message.id)); // after the decoder has settled
      } else {
        this.puts.set(message.id, { ...incomingPut(message, undefined), refused: true });
      }
    }
    this.sendError(message.id, error);
    return false;
  }

  private onHello(hello: MessageOf<'HELLO'>): void {
    if (!this.ctx.tokens) clearTimeout(this.handshakeTimer);
    if (hello.version < MIN_PROTOCOL_VERSION || hello.version > PROTOCOL_VERSION) {
      this.fail(
        new FerryError(
          'VERSION',
          `client speaks protocol ${hello.version}; this server speaks ${MIN_PROTOCOL_VERSION} to ${PROTOCOL_VERSION}`,
        ),
      );
      return;
    }
    this.version = hello.version;
    this.greeted = true;
    this.ctx.log.debug({ peer: this.peer, client: hello.clientName }, 'hello');
    this.send({
      type: 'SERVER_HELLO',
      id: 0,
      version: this.version,
      serverName: this.ctx.serverName,
      maxFileSize: this.ctx.store.maxFileSize,
      flags: this.ctx.tokens ? ServerFlag.AUTH_REQUIRED : 0,
    });
  }

  private requireVersion(version: number, feature: string): void {
    if (this.version < version) {
      throw new FerryError('UNSUPPORTED', `${feature} needs protocol ${version}; this connection speaks ${this.version}`);
    }
  }

  /** Runs a request, counted as in flight until its reply is sent. */
  private run(id: number, work: () => Promise<void>): void {
    this.track(this.respond(id, work));
  }

  /** Runs a request; a refusal becomes an ERROR reply and the connection stays usable. */
  private async respond(id: number, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      if (!this.closed) this.sendError(id, error);
    }
  }

  private async list(message: MessageOf<'LIST'>): Promise<void> {
    const entries = await this.ctx.store.list(message.prefix, (message.flags & ListFlag.RECURSIVE) !== 0);
    // Split into frames under the control-frame cap.
    let batch: WireEntry[] = [];
    let batchSize = ENTRIES_OVERHEAD;
    for (const entry of entries) {
      const wire = toWire(entry);
      const size = entryWireSize(wire);
      if (batchSize + size > MAX_CONTROL_PAYLOAD || batch.length === 0xffff) {
        this.send({ type: 'ENTRIES', id: message.id, more: true, entries: batch });
        batch = [];
        batchSize = ENTRIES_OVERHEAD;
      }
      batch.push(wire);
      batchSize += size;
    }
    this.send({ type: 'ENTRIES', id: message.id, more: false, entries: batch });
  }

  private async get(message: MessageOf<'GET'>): Promise<void> {
    const opened = await this.ctx.store.openRead(message.name);
    try {
      if (message.offset > opened.size) {
        throw new FerryError('PROTOCOL', `offset ${message.offset} is beyond the file's ${opened.size} bytes`);
      }
      const header = encodeMessage({
        type: 'GET_OK',
        id: message.id,
        size: opened.size,
        offset: message.offset,
        mtimeMs: opened.mtimeMs,
        sha256: opened.sha256,
      });
      await this.outbox.enqueue(async () => {
        this.socket.write(header);
        try {
          await sendFileRange(this.socket, opened.handle, message.offset, opened.size - message.offset);
        } catch (error) {
          // The size is promised: a short file or a broken socket ends the connection.
          this.socket.destroy();
          throw error;
        }
      });
      this.ctx.log.info({ peer: this.peer, name: message.name, size: opened.size }, 'sent');
    } finally {
      await opened.handle.close();
    }
  }

  private onPut(message: MessageOf<'PUT'>): void {
    if (this.puts.has(message.id)) throw new ProtocolError(`request id ${message.id} is already in use`);
    const chunked = (message.flags & PutFlag.CHUNKED) !== 0;
    const awaitReady = (message.flags & PutFlag.AWAIT_READY) !== 0;
    const put = incomingPut(message, chunked ? undefined : message.size);
    this.puts.set(message.id, put);
    const resume = (message.flags & PutFlag.RESUME) !== 0;
    if (resume && (!awaitReady || chunked || this.version < 2)) {
      throw new ProtocolError('RESUME needs AWAIT_READY, a declared size and protocol 2');
    }
    const options = {
      overwrite: (message.flags & PutFlag.OVERWRITE) !== 0,
      rename: (message.flags & PutFlag.RENAME) !== 0,
      size: put.declaredSize,
      resume,
    };
    if (!awaitReady) this.pause('put-setup');
    const setup = this.ctx.store.beginUpload(message.name, options).then(
      (upload) => {
        if (this.closed) {
          void upload.abort();
          return;
        }
        put.upload = upload;
        if (awaitReady) {
          this.send({ type: 'PUT_READY', id: put.id, offset: upload.offset, prefixSha256: upload.prefixSha256 });
          if (upload.offset > 0) this.ctx.log.info({ peer: this.peer, name: put.name, offset: upload.offset }, 'resuming upload');
          this.decoder.expectBody(put.id, put.declaredSize === undefined ? 'chunked' : put.declaredSize - upload.offset);
        } else {
          for (const chunk of put.early.splice(0)) this.writeBody(put, chunk);
          void this.maybeCommit(put);
          this.resume('put-setup');
        }
      },
      (error: unknown) => {
        put.refused = true;
        put.early = [];
        this.sendError(put.id, error);
        if (awaitReady) {
          this.puts.delete(put.id);
          this.decoder.cancelAwait(put.id);
        } else {
          this.resume('put-setup');
        }
      },
    );
    this.track(setup.catch((error: unknown) => this.fail(error)));
  }

  private onBody(id: number, data: Buffer): void {
    const put = this.puts.get(id);
    if (!put || put.refused) return;
    if (put.upload) this.writeBody(put, data);
    else put.early.push(data);
  }

  private writeBody(put: IncomingPut, data: Buffer): void {
    if (put.refused || !put.upload) return;
    let more: boolean;
    try {
      more = put.upload.write(data);
    } catch (error) {
      this.refuse(put, error);
      return;
    }
    if (!more) {
      this.pause(`sink-${put.id}`);
      put.upload.sink.onDrain(() => this.resume(`sink-${put.id}`));
    }
  }

  /** Refuses a put mid-body: the rest of its body is still read (and dropped). */
  private refuse(put: IncomingPut, error: unknown): void {
    put.refused = true;
    this.sendError(put.id, error);
    void put.upload?.abort();
    put.upload = undefined;
  }

  private onBodyEnd(id: number): void {
    const put = this.puts.get(id);
    if (put) put.bodyDone = true;
  }

  private onPutEnd(message: MessageOf<'PUT_END'>): void {
    const put = this.puts.get(message.id);
    if (!put || !put.bodyDone) throw new ProtocolError(`PUT_END for request ${message.id} without a finished body`);
    if (put.refused) {
      this.puts.delete(put.id);
      return;
    }
    put.expectedSha = message.sha256;
    if (put.upload) void this.maybeCommit(put);
  }

  private async maybeCommit(put: IncomingPut): Promise<void> {
    const { upload, expectedSha } = put;
    if (!upload || !put.bodyDone || expectedSha === undefined) return;
    put.upload = undefined; // committing: from here the commit owns the temporary
    const work = upload
      .commit({ size: put.declaredSize, sha256: expectedSha })
      .then((entry) => {
        this.ctx.log.info({ peer: this.peer, name: entry.name, size: entry.size }, 'stored');
        this.send({ type: 'PUT_OK', id: put.id, entry: toWire(entry) });
      })
      .catch((error: unknown) => {
        this.ctx.log.warn({ peer: this.peer, name: put.name, err: errorText(error) }, 'upload refused');
        if (!this.closed) this.sendError(put.id, error);
      })
      .finally(() => this.puts.delete(put.id));
    this.track(work);
    await work;
  }

  private async onClose(): Promise<void> {
    this.closed = true;
    clearTimeout(this.handshakeTimer);
    clearTimeout(this.authTimer);
    this.outbox.close();
    const pending = [...this.puts.values()];
    this.puts.clear();
    // An upload cut off mid-body publishes nothing (its bytes are kept for a resume);
    // commits already under way finish (abort is a no-op for them).
    await Promise.all(pending.map((p) => p.upload?.abort(!p.bodyDone)));
    this.resolveFinished();
  }
}

function toWire(entry: StoredEntry): WireEntry {
  return {
    name: entry.name,
    kind: entry.kind,
    size: entry.size,
    mtimeMs: entry.mtimeMs,
    sha256: entry.sha256, // all zero for folders (the store's entries say so)
  };
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
