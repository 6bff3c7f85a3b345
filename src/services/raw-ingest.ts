import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { Deadline, systemClock, type Clock, type Timer } from '../clock.js';
import { listenError } from '../server/server.js';
import type { ListeningAddress, PluginContext, ServerPlugin } from '../server/plugin.js';
import { ConnectionLimiter } from '../transport/limits.js';
import type { StoreBackend as Store, StoreUpload as Upload } from '../storage/backend.js';
import type { StoredEntry } from '../storage/store.js';
import { IngestCounter } from './ingest-counter.js';
import { resetConnectionsOnCrash } from './reset-on-crash.js';

/**
 * The raw ingest port: any TCP client can drop a file. Each connection's bytes, up to the
 * peer's FIN, become `raw/<n>.file` in the store, through the same Upload path as a protocol
 * put (private temporary, sha256 while writing, size limit, fsync, atomic rename).
 *
 * Numbers come from a durable counter in `<root>/.ferry/`, claimed in accept order, so they
 * are unique under concurrency and never reused after a restart, even when a file is later
 * deleted. A connection that fails consumes its number (numbers are per accepted connection).
 * The peer learns the outcome from how we close: a clean FIN after the file is durably
 * stored (data fsync, rename, folder fsync), a reset if it was discarded — and a reset from
 * the kernel if the server dies first (see reset-on-crash.ts).
 */

export const RAW_FOLDER = 'raw';
export const DEFAULT_RAW_IDLE_TIMEOUT_MS = 10_000;
/** Counter file, inside the store's internal state folder (never listed or served). */
const COUNTER_FILE = 'raw-ingest-next';

export function rawName(n: number): string {
  return `${RAW_FOLDER}/${n}.file`;
}

export interface RawIngestOptions {
  store: Store;
  log: Logger;
  /** Discard an upload after this long without a byte from the peer (default 10 s; any length, no timer overflow). */
  idleTimeoutMs?: number;
  /** Time source for the idle timeout and the shutdown grace (tests pass a ManualClock). */
  clock?: Clock;
  /** Connection caps (total and per address); shared with the main port when given. */
  limiter?: ConnectionLimiter;
  /** Used only without `limiter`. */
  maxConnections?: number;
  maxPerIp?: number;
}

export interface RawAddress {
  host: string;
  port: number;
}

export class RawIngestServer {
  private readonly netServer: net.Server;
  private readonly connections = new Set<RawConnection>();
  private counter: IngestCounter | undefined;
  private closing: Promise<void> | undefined;
  private readonly idleTimeoutMs: number;
  private readonly limiter: ConnectionLimiter;
  private readonly clock: Clock;
  /**
   * False until listen() has made accepted sockets reset when we die; connections accepted
   * before are refused, since a crash would close them with a FIN.
   */
  private ready = false;

  constructor(private readonly options: RawIngestOptions) {
    this.idleTimeoutMs = checkTimeout(options.idleTimeoutMs ?? DEFAULT_RAW_IDLE_TIMEOUT_MS, 'idleTimeoutMs');
    this.clock = options.clock ?? systemClock;
    // Half-open: after the peer's FIN we still need to close cleanly once the file is stored.
    this.netServer = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    this.limiter = options.limiter ?? new ConnectionLimiter({ maxConnections: options.maxConnections, maxPerIp: options.maxPerIp });
  }

  /** Opens the counter and listens; rejects with the system error (EADDRINUSE, …) as is. */
  async listen(host: string, port: number): Promise<RawAddress> {
    const store = this.options.store;
    this.counter = await IngestCounter.open(path.join(store.stateDir, COUNTER_FILE), {
      fsync: store.fsync,
      initial: () => firstFreeNumber(store.root),
    });
    await new Promise<void>((resolve, reject) => {
      this.netServer.once('error', reject);
      this.netServer.listen({ host, port }, () => {
        this.netServer.off('error', reject);
        resolve();
      });
    });
    try {
      await resetConnectionsOnCrash(this.netServer, this.clock);
    } catch (error) {
      this.options.log.warn(
        { reason: errorText(error) },
        'raw ingest: cannot make a crash reset raw connections; if the server dies while storing an upload, its sender may see a clean close',
      );
    }
    this.ready = true;
    const address = this.address;
    if (this.closing) this.netServer.close(); // close() came while we were opening
    return address;
  }

  get address(): RawAddress {
    const address = this.netServer.address();
    if (address === null || typeof address === 'string') throw new Error('raw ingest is not listening');
    return { host: address.address, port: address.port };
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  private accept(socket: net.Socket): void {
    if (this.closing || !this.counter || !this.ready) {
      // A reset, never a FIN: nothing was stored (the sender may retry).
      socket.on('error', () => undefined);
      socket.resetAndDestroy();
      return;
    }
    // Over a limit: reset at once, before a number is claimed (no number is used up).
    const admission = this.limiter.admit(socket.remoteAddress);
    if (!admission.ok) {
      this.options.log.warn({ peer: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`, reason: admission.reason }, 'raw connection refused');
      socket.on('error', () => undefined);
      socket.resetAndDestroy();
      return;
    }
    socket.once('close', admission.release);
    const store = this.options.store;
    // Claimed synchronously here, so numbers follow the order connections were accepted.
    const number = this.counter.claim((n) => store.exists(rawName(n)));
    const connection = new RawConnection(socket, number, {
      store,
      log: this.options.log,
      idleTimeoutMs: this.idleTimeoutMs,
      clock: this.clock,
    });
    this.connections.add(connection);
    void connection.finished.then(() => this.connections.delete(connection));
  }

  /**
   * Stops accepting, gives uploads in flight up to `graceMs` to finish, then discards the
   * rest (an upload already being committed always completes). Idempotent.
   */
  close(graceMs = 5000): Promise<void> {
    this.closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => this.netServer.close(() => resolve()));
      const all = (): Promise<unknown> => Promise.all([...this.connections].map((c) => c.finished));
      let timer: Timer | undefined;
      await Promise.race([all(), new Promise<void>((resolve) => (timer = this.clock.setTimer(graceMs, resolve)))]);
      timer?.cancel();
      for (const connection of this.connections) connection.discard('the server is shutting down');
      await all();
      await stopped;
    })();
    return this.closing;
  }
}

export interface RawIngestPluginOptions {
  port: number;
  idleTimeoutMs?: number;
  clock?: Clock;
}

/** The raw ingest port as a server plug-in: same host, store, log and connection caps as the server. */
export function rawIngestPlugin(options: RawIngestPluginOptions): ServerPlugin {
  checkTimeout(options.idleTimeoutMs ?? DEFAULT_RAW_IDLE_TIMEOUT_MS, 'idleTimeoutMs');
  let server: RawIngestServer | undefined;
  return {
    name: 'raw ingest',
    async start(context: PluginContext): Promise<ListeningAddress> {
      server = new RawIngestServer({ ...context, idleTimeoutMs: options.idleTimeoutMs, clock: options.clock ?? context.clock });
      try {
        return await server.listen(context.host, options.port);
      } catch (error) {
        throw listenError(error as NodeJS.ErrnoException, context.host, options.port);
      }
    },
    close: (graceMs) => server?.close(graceMs) ?? Promise.resolve(),
  };
}

/**
 * Timeouts are honoured at any length (a Deadline re-arms past Node's 2^31 − 1 ms timer limit);
 * only values that are not a positive number of milliseconds are refused.
 */
function checkTimeout(ms: number, option: string): number {
  if (!(ms > 0) || !Number.isFinite(ms)) throw new RangeError(`${option} must be a positive number of milliseconds, not ${ms}`);
  return ms;
}

/** One past the highest `raw/<n>.file` present: where numbering starts without a counter file. */
async function firstFreeNumber(root: string): Promise<number> {
  let names: string[];
  try {
    names = await fs.readdir(path.join(root, RAW_FOLDER));
  } catch {
    return 1;
  }
  let highest = 0;
  for (const name of names) {
    const match = /^(\d+)\.file$/.exec(name);
    if (match) highest = Math.max(highest, Number(match[1]));
  }
  return highest + 1;
}

interface ConnectionContext {
  store: Store;
  log: Logger;
  idleTimeoutMs: number;
  clock: Clock;
}

type State = 'opening' | 'receiving' | 'committing' | 'finished';

/** One raw upload: opening → receiving → committing → finished, or discarded on the way. */
class RawConnection {
  readonly finished: Promise<void>;
  private readonly peer: string;
  private readonly idle: Deadline;
  private readonly opening: Promise<void>;
  private state: State = 'opening';
  private upload: Upload | undefined;
  private name: string | undefined;
  private markFinished!: () => void;

  constructor(
    private readonly socket: net.Socket,
    number: Promise<number>,
    private readonly ctx: ConnectionContext,
  ) {
    this.peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.finished = new Promise((resolve) => (this.markFinished = resolve));
    this.idle = new Deadline(ctx.clock, ctx.idleTimeoutMs, () =>
      this.discard(`no data for ${ctx.idleTimeoutMs / 1000} s (raw idle timeout)`),
    );
    socket.on('error', (error: NodeJS.ErrnoException) => this.discard(socketProblem(error)));
    socket.on('close', () => this.discard('connection closed before the upload was complete'));
    this.idle.start();
    ctx.log.debug({ peer: this.peer }, 'raw connection');
    this.opening = this.open(number);
  }

  /** Waits for the number, then the temporary file; only then starts reading the socket. */
  private async open(number: Promise<number>): Promise<void> {
    try {
      this.name = rawName(await number);
      if (this.state !== 'opening') return;
      this.upload = await this.ctx.store.beginUpload(this.name);
    } catch (error) {
      this.discard(`cannot start the upload: ${errorText(error)}`);
      return;
    }
    if (this.state !== 'opening') return; // discarded meanwhile; discard() aborts the upload
    this.state = 'receiving';
    this.socket.on('data', (chunk: Buffer) => this.receive(chunk));
    // A peer that sent no byte may have finished already: with nothing buffered, Node emits
    // 'end' as soon as the FIN arrives, before we listen for it.
    if (this.socket.readableEnded) void this.commit();
    else this.socket.on('end', () => void this.commit());
  }

  private receive(chunk: Buffer): void {
    if (this.state !== 'receiving' || !this.upload) return;
    this.idle.touch();
    let more: boolean;
    try {
      more = this.upload.write(chunk);
    } catch (error) {
      this.discard(errorText(error)); // over the size limit
      return;
    }
    if (!more) {
      // The disk is behind: stop reading, and do not count this pause as the peer's silence.
      this.socket.pause();
      this.idle.stop();
      this.upload.sink.onDrain(() => {
        if (this.state !== 'receiving') return;
        this.idle.start();
        this.socket.resume();
      });
    }
  }

  private async commit(): Promise<void> {
    if (this.state !== 'receiving' || !this.upload) return;
    this.idle.stop();
    // libuv reports a reset that arrives while bytes are still unread as a clean end of
    // stream. A zero-byte write sends nothing to a live peer but fails on a reset socket,
    // where the 'error' handler discards the (truncated) upload.
    if (!(await stillConnected(this.socket)) || this.state !== 'receiving') return;
    this.state = 'committing';
    let entry: StoredEntry;
    try {
      // Durable before the FIN: raw/ named in the root, then the data fsynced, renamed into
      // raw/ and raw/ fsynced (Upload.commit).
      entry = await this.upload.commit({});
    } catch (error) {
      this.state = 'finished';
      this.ctx.log.warn({ peer: this.peer, name: this.name, reason: errorText(error) }, 'raw upload discarded');
      if (!this.socket.destroyed) this.socket.resetAndDestroy();
      // A no-op when Upload.commit() ran: it removes its temporary itself when it fails.
      await this.upload.abort().catch((problem: unknown) => this.ctx.log.error({ peer: this.peer, err: errorText(problem) }, 'cannot remove a discarded raw upload'));
      this.markFinished();
      return;
    }
    this.state = 'finished';
    this.ctx.log.info(
      { peer: this.peer, name: entry.name, size: entry.size, sha256: entry.digest.toString('hex') },
      'raw upload stored',
    );
    // Closing our side tells the sender the file is stored (it waits for this).
    this.socket.end();
    this.markFinished();
  }

  /** Drops the upload with one log line; no-op once the upload is committing or done. */
  discard(reason: string): void {
    if (this.state === 'committing' || this.state === 'finished') return;
    this.state = 'finished';
    this.idle.stop();
    this.ctx.log.warn({ peer: this.peer, name: this.name, reason }, 'raw upload discarded');
    // A reset, not a FIN, so the sender cannot mistake a discarded upload for a stored one.
    if (!this.socket.destroyed) this.socket.resetAndDestroy();
    void this.opening
      .then(() => this.upload?.abort())
      .catch((error: unknown) => this.ctx.log.error({ peer: this.peer, err: errorText(error) }, 'cannot remove a discarded raw upload'))
      .finally(() => this.markFinished());
  }
}

const NOTHING = Buffer.alloc(0);

function stillConnected(socket: net.Socket): Promise<boolean> {
  return new Promise((resolve) => socket.write(NOTHING, (error) => resolve(!error)));
}

function socketProblem(error: NodeJS.ErrnoException): string {
  if (error.code === 'ECONNRESET') return 'connection reset by the peer';
  if (error.code === 'ETIMEDOUT') return 'connection timed out';
  return `connection error: ${error.code ?? error.message}`;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
