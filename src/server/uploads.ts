import { FerryError, ProtocolError } from '../errors.js';
import { PutFlag, type MessageOf, type WireEntry } from '../protocol/index.js';
import type { StoreUpload as Upload } from '../storage/backend.js';
import type { StoredEntry, UploadOptions } from '../storage/store.js';
import { FileBudget } from './file-budget.js';
import type { SessionIo } from './session-io.js';

/**
 * Upload temporaries one connection may hold open at once (pipelined puts waiting for their
 * PUT_END or commit). More wait for a slot; the peer is then the one holding things up.
 */
export const MAX_OPEN_UPLOADS_PER_CONNECTION = 32;

/** PUT flag bits this server knows, by protocol version; any other bit is refused with UNSUPPORTED (PROTOCOL.md §5.1). */
const PUT_FLAGS_V2 = PutFlag.OVERWRITE | PutFlag.CHUNKED | PutFlag.AWAIT_READY | PutFlag.RENAME | PutFlag.RESUME;
const PUT_FLAGS_V3 = PUT_FLAGS_V2 | PutFlag.MTIME;

interface IncomingPut {
  readonly id: number;
  readonly name: string;
  /** Undefined for a chunked body. */
  readonly declaredSize: number | undefined;
  /** Set once the temporary file is open. */
  upload: Upload | undefined;
  bodyDone: boolean;
  /** Refused: the rest of its body and its PUT_END are read and dropped. */
  refused: boolean;
  /** The client's digest from PUT_END, once it has arrived. */
  expectedDigest: Buffer | undefined;
  /** Gives back the open-file slot (idempotent). */
  release: () => void;
}

/**
 * The uploads in progress on one connection (PROTOCOL.md §5.1): each PUT's temporary, its body
 * as it arrives, its refusal or its commit. Bodies go straight to the store's file sink; when
 * the sink is full the connection stops being read (the disk sets the pace).
 */
export class Uploads {
  private readonly puts = new Map<number, IncomingPut>();
  /** Aborts under way for puts already dropped from `puts`; `closeAll` waits for them. */
  private readonly cleanups = new Set<Promise<void>>();

  private readonly slots: FileBudget;

  constructor(private readonly io: SessionIo) {
    this.slots = new FileBudget(MAX_OPEN_UPLOADS_PER_CONNECTION, io.ctx.clock, io.ctx.limits.idleTimeoutMs);
  }

  get count(): number {
    return this.puts.size;
  }

  /** The id of an upload whose body the peer still owes, if any (for the idle deadline's reason). */
  get owingBody(): number | undefined {
    for (const put of this.puts.values()) if (!put.bodyDone && (put.upload !== undefined || put.refused)) return put.id;
    return undefined;
  }

  /** A PUT this connection may not make (tokens): refused, its body (if it follows) dropped. */
  refuse(message: MessageOf<'PUT'>, error: unknown): void {
    if (this.puts.has(message.id)) throw new ProtocolError(`request id ${message.id} is already in use`);
    if (message.flags & PutFlag.AWAIT_READY) {
      this.io.decoder.cancelAwait(message.id);
    } else {
      this.puts.set(message.id, this.incoming(message, { refused: true }));
    }
    this.io.sendError(message.id, error);
  }

  start(message: MessageOf<'PUT'>, version: number): void {
    if (this.puts.has(message.id)) throw new ProtocolError(`request id ${message.id} is already in use`);
    const chunked = (message.flags & PutFlag.CHUNKED) !== 0;
    const awaitReady = (message.flags & PutFlag.AWAIT_READY) !== 0;
    const resume = (message.flags & PutFlag.RESUME) !== 0;
    if (resume && (!awaitReady || chunked || version < 2)) {
      throw new ProtocolError('RESUME needs AWAIT_READY, a declared size and protocol 2');
    }
    const known = version >= 3 ? PUT_FLAGS_V3 : PUT_FLAGS_V2;
    if ((message.flags & ~known) !== 0) {
      this.refuse(message, new FerryError('UNSUPPORTED', `unknown PUT flag bits 0x${(message.flags & ~known).toString(16)}`));
      return;
    }
    if (message.flags & PutFlag.MTIME && message.mtimeMs === undefined) throw new ProtocolError('PUT with MTIME but no mtime field');
    const put = this.incoming(message, { refused: false });
    this.puts.set(put.id, put);
    const options: UploadOptions = {
      overwrite: (message.flags & PutFlag.OVERWRITE) !== 0,
      rename: (message.flags & PutFlag.RENAME) !== 0,
      size: put.declaredSize,
      resume,
      mtimeMs: message.flags & PutFlag.MTIME ? message.mtimeMs : undefined,
      algorithm: this.io.algorithm,
    };
    // Nothing of the body is read until the temporary is open (or the put refused).
    if (!awaitReady) this.io.pause(`put-setup-${put.id}`);
    // Waiting for this connection's own slot is the peer's doing; the rest is the server's work.
    const setup = this.slots.acquire().then((own) => {
      put.release = own;
      return this.io.working(this.begin(put, options));
    });
    this.io.track(
      setup.then(
        (upload) => this.io.guard(() => this.opened(put, upload, awaitReady)),
        (error: unknown) => this.io.guard(() => this.setupFailed(put, error, awaitReady)),
      ),
    );
  }

  private async begin(put: IncomingPut, options: UploadOptions): Promise<Upload> {
    const own = put.release;
    const shared = await this.io.ctx.files.acquire();
    // The put owns both slots from here: released on commit, refusal or close.
    put.release = () => {
      shared();
      own();
    };
    if (this.io.closed) throw new FerryError('CONNECTION', 'connection closed');
    return this.io.ctx.store.beginUpload(put.name, options);
  }

  private opened(put: IncomingPut, upload: Upload, awaitReady: boolean): void {
    if (this.io.closed || this.puts.get(put.id) !== put) {
      void upload.abort().finally(put.release);
      return;
    }
    put.upload = upload;
    if (awaitReady) {
      this.io.send({ type: 'PUT_READY', id: put.id, offset: upload.offset, prefixDigest: upload.prefixDigest });
      if (upload.offset > 0) this.io.ctx.log.info({ peer: this.io.peer, name: put.name, offset: upload.offset }, 'resuming upload');
      this.io.decoder.expectBody(put.id, put.declaredSize === undefined ? 'chunked' : put.declaredSize - upload.offset);
    } else {
      this.io.resume(`put-setup-${put.id}`);
    }
    this.maybeCommit(put);
  }

  private setupFailed(put: IncomingPut, error: unknown, awaitReady: boolean): void {
    put.release();
    if (this.io.closed) return;
    put.refused = true;
    this.io.sendError(put.id, error);
    if (awaitReady) {
      this.puts.delete(put.id);
      this.io.decoder.cancelAwait(put.id);
    } else {
      this.io.resume(`put-setup-${put.id}`);
      if (put.expectedDigest !== undefined) this.puts.delete(put.id); // its PUT_END came already
    }
  }

  /** A body slice; `hold` marks it kept until the release it returns is called (see SlabReader). */
  body(id: number, data: Buffer, hold: () => () => void): void {
    const put = this.puts.get(id);
    if (!put || put.refused || !put.upload) return; // refused: dropped
    let more: boolean;
    try {
      more = put.upload.write(data, hold());
    } catch (error) {
      this.refuseMidBody(put, error);
      return;
    }
    if (!more) {
      const reason = `sink-${put.id}`;
      this.io.pause(reason);
      put.upload.sink.onDrain(() => this.io.guard(() => this.io.resume(reason)));
    }
  }

  /** Refuses a put mid-body (size limit, quota, disk): the rest of its body is read and dropped. */
  private refuseMidBody(put: IncomingPut, error: unknown): void {
    put.refused = true;
    this.io.sendError(put.id, error);
    const upload = put.upload;
    put.upload = undefined;
    void (upload?.abort() ?? Promise.resolve()).finally(put.release);
  }

  bodyEnd(id: number): void {
    const put = this.puts.get(id);
    if (put) put.bodyDone = true;
  }

  end(message: MessageOf<'PUT_END'>): void {
    const put = this.puts.get(message.id);
    if (!put || !put.bodyDone) throw new ProtocolError(`PUT_END for request ${message.id} without a finished body`);
    if (put.expectedDigest !== undefined) throw new ProtocolError(`PUT_END sent twice for request ${message.id}`);
    put.expectedDigest = message.digest;
    if (put.refused) {
      this.puts.delete(put.id);
      return;
    }
    this.maybeCommit(put);
  }

  private maybeCommit(put: IncomingPut): void {
    const { upload, expectedDigest } = put;
    if (!upload || !put.bodyDone || expectedDigest === undefined) return;
    put.upload = undefined; // committing: from here the commit owns the temporary
    const io = this.io;
    const commit = io.working(upload.commit({ size: put.declaredSize, digest: expectedDigest })).then(
      (entry) =>
        io.guard(() => {
          io.ctx.log.info({ peer: io.peer, name: entry.name, size: entry.size }, 'stored');
          io.send({ type: 'PUT_OK', id: put.id, entry: toWire(entry) });
        }),
      (error: unknown) =>
        io.guard(() => {
          io.ctx.log.warn({ peer: io.peer, name: put.name, err: error instanceof Error ? error.message : String(error) }, 'upload refused');
          io.sendError(put.id, error);
        }),
    );
    io.track(
      commit.finally(() => {
        put.release();
        this.puts.delete(put.id);
      }),
    );
  }

  /**
   * The peer half-closed and everything it sent has been read: a put still without its
   * PUT_END can never finish. It is given up like one cut off by a close.
   */
  cutOff(): void {
    for (const put of [...this.puts.values()]) {
      if (put.expectedDigest !== undefined) continue; // committing (or a refusal being drained)
      this.puts.delete(put.id);
      if (!put.upload) continue; // its setup sees it gone and cleans up
      const upload = put.upload;
      put.upload = undefined;
      const cleanup = upload.abort(!put.bodyDone).finally(() => {
        put.release();
        this.cleanups.delete(cleanup);
      });
      this.cleanups.add(cleanup);
    }
  }

  /**
   * The connection is gone: an upload cut off mid-body publishes nothing (its bytes are kept
   * for a resume when it had a declared size); commits already under way finish.
   */
  async closeAll(): Promise<void> {
    const pending = [...this.puts.values()];
    this.puts.clear();
    await Promise.all([...this.cleanups].map((cleanup) => cleanup.catch(() => undefined)));
    await Promise.all(
      pending.map(async (put) => {
        // Without an upload, whoever holds the put (its setup or its commit) releases the slot.
        if (!put.upload) return;
        try {
          await put.upload.abort(!put.bodyDone);
        } finally {
          put.release();
        }
      }),
    );
  }

  private incoming(message: MessageOf<'PUT'>, state: { refused: boolean }): IncomingPut {
    const chunked = (message.flags & PutFlag.CHUNKED) !== 0;
    return {
      id: message.id,
      name: message.name,
      declaredSize: chunked ? undefined : message.size,
      upload: undefined,
      bodyDone: false,
      refused: state.refused,
      expectedDigest: undefined,
      release: () => undefined,
    };
  }
}

export function toWire(entry: StoredEntry): WireEntry {
  return {
    name: entry.name,
    kind: entry.kind,
    size: entry.size,
    mtimeMs: entry.mtimeMs,
    digest: entry.digest, // all zero for folders (the store's entries say so)
  };
}
