import net from 'node:net';
import os from 'node:os';
import type { Logger } from 'pino';
import { FerryError } from '../errors.js';
import { Store } from '../storage/store.js';
import { RawIngestServer } from '../services/raw-ingest.js';
import { createLogger } from './log.js';
import { Session, type SessionLimits } from './session.js';

export interface ServerOptions {
  /** Folder the files are stored in; created if missing. Default ./ferry-data. */
  root?: string;
  host?: string;
  /** 0 picks a free port. Default 4455. */
  port?: number;
  serverName?: string;
  maxFileSize?: number;
  /** fsync before acknowledging an upload (default true); false trades durability for speed. */
  fsync?: boolean;
  maxConnections?: number;
  handshakeTimeoutMs?: number;
  idleTimeoutMs?: number;
  logger?: Logger;
  /** Also listen here (same host) for raw uploads: each connection becomes raw/<n>.file. 0 picks a free port. */
  rawPort?: number;
  /** A raw upload is discarded after this long without a byte (default 10 s). */
  rawIdleTimeoutMs?: number;
}

export const DEFAULT_PORT = 4455;
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_ROOT = './ferry-data';

export interface ListeningAddress {
  host: string;
  port: number;
}

/** A ferry server: call `listen()`, later `close()`. */
export class FerryServer {
  readonly log: Logger;
  private readonly sessions = new Set<Session>();
  private readonly netServer: net.Server;
  private store: Store | undefined;
  private readonly limits: SessionLimits;
  private readonly options: ServerOptions;
  private closing: Promise<void> | undefined;
  private rawIngest: RawIngestServer | undefined;

  constructor(options: ServerOptions = {}) {
    this.options = options;
    this.log = options.logger ?? createLogger();
    this.limits = {
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? 15_000,
      idleTimeoutMs: options.idleTimeoutMs ?? 300_000,
      maxInFlight: 64,
    };
    this.netServer = net.createServer((socket) => this.accept(socket));
    this.netServer.maxConnections = options.maxConnections ?? 1000;
  }

  get storage(): Store {
    if (!this.store) throw new Error('server is not listening');
    return this.store;
  }

  get connectionCount(): number {
    return this.sessions.size;
  }

  async listen(): Promise<ListeningAddress> {
    this.store = await Store.open(this.options.root ?? DEFAULT_ROOT, {
      maxFileSize: this.options.maxFileSize,
      fsync: this.options.fsync,
    });
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
    this.log.info({ root: this.store.root }, `listening on ${formatAddress(address)}`);
    if (this.options.rawPort !== undefined) await this.listenRaw(host, this.options.rawPort);
    return address;
  }

  /** Opens the raw ingest port; if it cannot, the main port is closed again. */
  private async listenRaw(host: string, port: number): Promise<void> {
    if (this.closing) return;
    this.rawIngest = new RawIngestServer({
      store: this.storage,
      log: this.log,
      idleTimeoutMs: this.options.rawIdleTimeoutMs,
      maxConnections: this.options.maxConnections,
    });
    try {
      const address = await this.rawIngest.listen(host, port);
      this.log.info(`raw ingest listening on ${formatAddress(address)}`);
    } catch (error) {
      await new Promise<void>((resolve) => this.netServer.close(() => resolve()));
      throw listenError(error as NodeJS.ErrnoException, host, port);
    }
  }

  /** The raw ingest port's address, when `rawPort` was given. */
  get rawAddress(): ListeningAddress | undefined {
    return this.rawIngest?.address;
  }

  get address(): ListeningAddress {
    const address = this.netServer.address();
    if (address === null || typeof address === 'string') throw new Error('server is not listening');
    return { host: address.address, port: address.port };
  }

  private accept(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const session = new Session(socket, {
      store: this.storage,
      serverName: this.options.serverName ?? os.hostname(),
      limits: this.limits,
      log: this.log,
    });
    this.sessions.add(session);
    const started = Date.now();
    this.log.info({ peer: session.peer }, 'connected');
    socket.on('close', () => {
      this.sessions.delete(session);
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
      const rawClosed = this.rawIngest?.close(graceMs);
      for (const session of this.sessions) session.closeWhenIdle();
      const quiet = Promise.all([...this.sessions].map((s) => s.finished));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([quiet, new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
      for (const session of this.sessions) session.destroy();
      await stopped;
      await rawClosed;
    })();
    return this.closing;
  }
}

export function createServer(options: ServerOptions = {}): FerryServer {
  return new FerryServer(options);
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
