import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { FerryError, WireErrorCode } from '../errors.js';
import { blake3Available, blake3LoadProblem } from '../io/digest.js';
import { encodeMessage } from '../protocol/index.js';
import type { StoreBackend } from '../storage/backend.js';
import type { S3Location } from '../storage/s3/location.js';
import { S3Store } from '../storage/s3/store.js';
import { Store } from '../storage/store.js';
import { adoptTlsWithSlabs, adoptWithSlabs } from '../transport/adopt-socket.js';
import type { SlabReader } from '../transport/read-slab.js';
import { loadServerCredentials, serverContext, type ServerTlsOptions } from '../transport/tls.js';
import { AuthThrottle, TokenSet, type ThrottleOptions } from './auth.js';
import { ConnectionLimiter, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_PER_IP } from '../transport/limits.js';
import { createLogger } from './log.js';
import { ServerEvents } from './events.js';
import type { ListeningAddress, ServerPlugin } from './plugin.js';
import { systemClock, type Clock } from '../clock.js';
import { defaultFileBudget, FileBudget } from './file-budget.js';
import { Session, type SessionLimits } from './session.js';

export interface ServerOptions {
  /** Folder the files are stored in; created if missing. Default ./ferry-data. With `s3`, only the server's own state. */
  root?: string;
  /** Keep the files in an S3 bucket instead of `root` (any number of servers may share it). */
  s3?: S3Location & { partSize?: number };
  host?: string;
  /** 0 picks a free port. Default 4455. */
  port?: number;
  serverName?: string;
  maxFileSize?: number;
  /** fsync before acknowledging an upload (default true); false trades durability for speed. */
  fsync?: boolean;
  /** How long an interrupted upload is kept for resuming (default 24 h). */
  partialTtlMs?: number;
  /** Most interrupted uploads kept at once (default 1000); the oldest go first. */
  maxPartials?: number;
  /** Most bytes kept in interrupted uploads (default: half the quota, or half the free disk at start). */
  maxPartialBytes?: number;
  /** Connections at once, over every port (default 1000). */
  maxConnections?: number;
  /** Connections at once from one address (an IPv6 /64), over every port (default 50). */
  maxPerIp?: number;
  /** Absolute deadline for HELLO (and AUTH, with tokens), in ms (default 15 s). */
  handshakeTimeoutMs?: number;
  /** Close a connection whose peer made no progress (sent nothing, read nothing) for this long, in ms (default 300 s). */
  idleTimeoutMs?: number;
  /** Requests one connection may have in progress before the server stops reading it (default 64). */
  maxInFlight?: number;
  /** Reply bytes a connection may leave unread before the server stops reading it (default 256 KiB). */
  maxBacklogBytes?: number;
  /** Files held open for transfers at once, over all connections (default: from the process's open-file limit). */
  maxOpenFiles?: number;
  /** Time for every deadline; tests pass a manual clock (default: the system clock). */
  clock?: Clock;
  /** Total bytes the stored files may take; uploads beyond are refused with QUOTA. */
  quota?: number;
  /** Require a token (PROTOCOL.md §8): a parsed set, or the path of a tokens file. */
  tokens?: TokenSet | string;
  /** How failed AUTH attempts from one address are slowed down. */
  authThrottle?: ThrottleOptions;
  /** Serve TLS only (PROTOCOL.md §9): true for a self-signed certificate kept under <root>/.ferry/tls, or PEM files. */
  tls?: boolean | ServerTlsOptions;
  logger?: Logger;
  /**
   * Digests clients may verify with: 'auto' (default) agrees to BLAKE3 with a version-4 client
   * that offers it, when the native binding loads; 'sha256' keeps every connection on SHA-256.
   */
  digest?: 'auto' | 'sha256';
  /** Listeners that run beside the protocol port on the same host, store and limits (e.g. raw ingest). */
  plugins?: ServerPlugin[];
}

export const DEFAULT_PORT = 4455;
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_ROOT = './ferry-data';

export type { ListeningAddress } from './plugin.js';

/** A ferry server: call `listen()`, later `close()`. (`createServer` in src/index.ts adds the plug-ins.) */
export class FerryServer {
  readonly log: Logger;
  private readonly sessions = new Set<Session>();
  private readonly netServer: net.Server;
  private store: StoreBackend | undefined;
  private readonly limits: SessionLimits;
  private readonly options: ServerOptions;
  private closing: Promise<void> | undefined;
  /** Plug-ins started so far, with their addresses. */
  private readonly started = new Map<ServerPlugin, ListeningAddress>();
  private readonly limiter: ConnectionLimiter;
  private readonly throttle: AuthThrottle;
  private readonly clock: Clock;
  /** Open files for transfers, shared by every connection. */
  readonly files: FileBudget;
  private tokens: TokenSet | undefined;
  private secureContext: tls.SecureContext | undefined;
  /** `SHA256:<base64>` of the TLS certificate, once listening with TLS. */
  tlsFingerprint: string | undefined;
  /** Connections, requests and auth failures as they happen, for observers (metrics). */
  readonly events: ServerEvents;

  constructor(options: ServerOptions = {}) {
    this.options = options;
    this.log = options.logger ?? createLogger();
    this.events = new ServerEvents((error) => this.log.warn({ err: error }, 'an event listener failed'));
    this.limits = {
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? 15_000,
      idleTimeoutMs: options.idleTimeoutMs ?? 300_000,
      maxInFlight: options.maxInFlight ?? 64,
      maxBacklogBytes: options.maxBacklogBytes ?? 256 * 1024,
    };
    this.clock = options.clock ?? systemClock;
    const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.files = new FileBudget(options.maxOpenFiles ?? defaultFileBudget(maxConnections), this.clock);
    this.limiter = new ConnectionLimiter({
      maxConnections,
      maxPerIp: options.maxPerIp ?? DEFAULT_MAX_PER_IP,
    });
    this.throttle = new AuthThrottle(options.authThrottle);
    // Half-open: a client's FIN ends its requests, not our replies to them (PROTOCOL.md §3).
    this.netServer = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
  }

  get storage(): StoreBackend {
    if (!this.store) throw new Error('server is not listening');
    return this.store;
  }

  get connectionCount(): number {
    return this.sessions.size;
  }

  async listen(): Promise<ListeningAddress> {
    this.store = this.options.s3 ? await this.openS3(this.options.s3) : await Store.open(this.options.root ?? DEFAULT_ROOT, {
      maxFileSize: this.options.maxFileSize,
      fsync: this.options.fsync,
      partialTtlMs: this.options.partialTtlMs,
      maxPartials: this.options.maxPartials,
      maxPartialBytes: this.options.maxPartialBytes,
      quota: this.options.quota,
      clock: this.clock,
    });
    this.logPartials();
    const tokens = this.options.tokens;
    this.tokens = typeof tokens === 'string' ? await TokenSet.load(tokens) : tokens;
    if (this.options.tls) {
      const credentials = await loadServerCredentials(this.store.stateDir, this.options.tls === true ? {} : this.options.tls);
      this.secureContext = serverContext(credentials);
      this.tlsFingerprint = credentials.fingerprint;
      this.log.info(
        { certificate: credentials.source },
        `${credentials.created ? 'created a self-signed TLS certificate; ' : ''}TLS certificate fingerprint ${credentials.fingerprint}`,
      );
    }
    const host = this.options.host ?? DEFAULT_HOST;
    const port = this.options.port ?? DEFAULT_PORT;
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException): void => reject(listenError(error, host, port));
      this.netServer.once('error', onError);
      this.netServer.listen({ host, port }, () => {
        this.netServer.off('error', onError);
        resolve();
      });
    });
    const address = this.address;
    const digests = this.options.digest !== 'sha256' && blake3Available() ? 'blake3,sha256' : 'sha256';
    if (this.options.digest !== 'sha256' && !blake3Available()) {
      this.log.warn(`BLAKE3 is unavailable (${blake3LoadProblem()}): every transfer is verified with SHA-256, which costs more CPU`);
    }
    this.log.info(
      { root: this.store.location, tls: this.secureContext !== undefined, tokens: this.tokens?.size ?? 0, digests },
      `listening on ${formatAddress(address)}${this.secureContext ? ' (TLS)' : ''}`,
    );
    for (const plugin of this.options.plugins ?? []) await this.startPlugin(plugin, host);
    return address;
  }

  private openS3(location: S3Location & { partSize?: number }): Promise<StoreBackend> {
    return S3Store.open(location, {
      stateRoot: this.options.root ?? DEFAULT_ROOT,
      maxFileSize: this.options.maxFileSize,
      quota: this.options.quota,
      partialTtlMs: this.options.partialTtlMs,
      partSize: location.partSize,
      clock: this.clock,
    });
  }

  /** The interrupted uploads kept for resuming: a summary, and each one (oldest first) at debug level. */
  private logPartials(): void {
    const partials = this.storage.partials.list();
    if (partials.length === 0) return;
    const held = partials.reduce((sum, p) => sum + p.held, 0);
    this.log.info({ count: partials.length, bytes: held }, `keeping ${partials.length} interrupted uploads (${held} bytes) for resuming`);
    for (const p of partials) this.log.debug({ name: p.name, size: p.size, held: p.held, expiresAt: new Date(p.expiresAt).toISOString() }, 'kept partial upload');
  }

  /** Starts one plug-in; if it cannot listen, everything started so far is closed again. */
  private async startPlugin(plugin: ServerPlugin, host: string): Promise<void> {
    if (this.closing) return;
    try {
      const address = await plugin.start({ host, store: this.storage, log: this.log, limiter: this.limiter, clock: this.clock, events: this.events });
      this.started.set(plugin, address);
      this.log.info(`${plugin.name} listening on ${formatAddress(address)}`);
    } catch (error) {
      await Promise.all([...this.started.keys()].map((p) => p.close(0)));
      await new Promise<void>((resolve) => this.netServer.close(() => resolve()));
      throw error;
    }
  }

  /** Where the plug-in named `name` listens, once started. */
  pluginAddress(name: string): ListeningAddress | undefined {
    for (const [plugin, address] of this.started) if (plugin.name === name) return address;
    return undefined;
  }

  /** The raw ingest port's address, when that plug-in runs. */
  get rawAddress(): ListeningAddress | undefined {
    return this.pluginAddress('raw ingest');
  }

  get address(): ListeningAddress {
    const address = this.netServer.address();
    if (address === null || typeof address === 'string') throw new Error('server is not listening');
    return { host: address.address, port: address.port };
  }

  private accept(accepted: net.Socket): void {
    if (this.closing) {
      accepted.destroy();
      return;
    }
    // Plain TCP reads into reused slabs (TLS too, once admitted: see startSession).
    const { socket: raw, reader: plainReader } = this.secureContext ? { socket: accepted, reader: undefined } : adoptWithSlabs(accepted, true);
    // Counted before any TLS or protocol work, so refusing costs next to nothing.
    const admission = this.limiter.admit(raw.remoteAddress);
    if (!admission.ok) {
      this.log.warn({ peer: `${raw.remoteAddress ?? '?'}:${raw.remotePort ?? '?'}`, reason: admission.reason }, 'connection refused');
      raw.on('error', () => undefined);
      // A plaintext peer is told why (ERROR id 0 BUSY); a TLS peer just sees the close.
      if (!this.secureContext) raw.write(encodeMessage({ type: 'ERROR', id: 0, code: WireErrorCode.BUSY, message: admission.reason }));
      raw.end();
      this.clock.setTimer(1000, () => raw.destroy());
      return;
    }
    let socket: net.Socket | undefined;
    try {
      const adopted = this.secureContext
        ? adoptTlsWithSlabs(raw, { secureContext: this.secureContext, requestCert: false })
        : { socket: raw, reader: plainReader };
      socket = adopted.socket;
      socket.once('close', admission.release);
      this.startSession(socket, adopted.reader);
    } catch (error) {
      // Whatever goes wrong with one connection stays with it.
      this.log.error({ peer: `${raw.remoteAddress ?? '?'}:${raw.remotePort ?? '?'}`, err: error }, 'could not start a session');
      raw.destroy();
      socket?.destroy();
      admission.release();
    }
  }

  private startSession(socket: net.Socket, reader: SlabReader | undefined): void {
    if (this.secureContext) socket.on('error', (error) => this.log.debug({ err: error.message }, 'TLS error'));
    const session = new Session(socket, {
      store: this.storage,
      serverName: this.options.serverName ?? os.hostname(),
      limits: this.limits,
      log: this.log,
      clock: this.clock,
      files: this.files,
      tokens: this.tokens,
      throttle: this.throttle,
      tls: this.secureContext !== undefined,
      blake3: this.options.digest !== 'sha256' && blake3Available(),
      events: this.events,
    }, reader);
    this.sessions.add(session);
    this.events.emit('connection', socket);
    const started = Date.now();
    this.log.info({ peer: session.peer }, 'connected');
    socket.on('close', () => {
      this.sessions.delete(session);
      this.events.emit('disconnection', socket);
      this.log.info({ peer: session.peer, bytesIn: socket.bytesRead, bytesOut: socket.bytesWritten, ms: Date.now() - started }, 'disconnected');
    });
  }

  /**
   * Stops accepting, lets transfers in flight finish for up to `graceMs`, then closes every
   * connection. Idempotent.
   */
  close(graceMs = 5000): Promise<void> {
    this.closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => this.netServer.close(() => resolve()));
      const pluginsClosed = Promise.all([...this.started.keys()].map((plugin) => plugin.close(graceMs)));
      for (const session of this.sessions) session.closeWhenIdle();
      const quiet = Promise.all([...this.sessions].map((s) => s.finished));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([quiet, new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
      for (const session of this.sessions) session.destroy();
      await stopped;
      await pluginsClosed;
      await this.store?.close(); // its folder descriptors and the partial-upload sweep
    })();
    return this.closing;
  }
}

export function formatAddress(address: ListeningAddress): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

export function listenError(error: NodeJS.ErrnoException, host: string, port: number): Error {
  const where = formatAddress({ host, port });
  switch (error.code) {
    case 'EADDRINUSE':
      return new FerryError('LOCAL_IO', `${where} is already in use: stop the other server or pick another --port`, { cause: error });
    case 'EACCES':
      return new FerryError('LOCAL_IO', `no permission to listen on ${where}: use a port above 1023 or run with privileges`, { cause: error });
    case 'EADDRNOTAVAIL':
      return new FerryError('LOCAL_IO', `${host} is not an address of this machine: pick another --host`, { cause: error });
    case 'ENOTFOUND':
      return new FerryError('LOCAL_IO', `cannot resolve host "${host}"`, { cause: error });
    default:
      return error;
  }
}
