import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { Logger } from 'pino';
import type { Clock, Timer } from '../clock.js';
import { FerryError } from '../errors.js';
import type { TokenSet } from '../server/auth.js';
import { TokenSet as Tokens } from '../server/auth.js';
import type { ListeningAddress, PluginContext } from '../server/plugin.js';
import type { StoreBackend } from '../storage/backend.js';
import { loadServerCredentials, MIN_TLS_VERSION, preferredCiphers, serverContext, type ServerTlsOptions } from '../transport/tls.js';
import type { ConnectionLimiter } from '../transport/limits.js';
import { Access, challenge } from './access.js';
import { serveAsset } from './assets.js';
import { handleDelete, handleMkcol, handleMove } from './changes.js';
import { EXPECTS_CONTINUE, type DoorContext } from './context.js';
import { serveFile } from './files.js';
import { serveListing } from './listing.js';
import { asFerryError, sendError } from './respond.js';
import { serveTar } from './tar.js';
import { flag, INTERNAL_PREFIX, parseTarget } from './target.js';
import { TusEndpoint, TUS_PATH } from './tus.js';
import { handlePut } from './upload.js';
import { ConnectionWatch } from './watch.js';

export const DEFAULT_HTTP_IDLE_TIMEOUT_MS = 300_000;

export interface HttpDoorOptions {
  port: number;
  /** The server's tokens (a parsed set, or the file), PROTOCOL.md §8 rules. */
  tokens?: TokenSet | string;
  /** HTTPS with the server's certificate (the same one the protocol port uses). */
  tls?: boolean | ServerTlsOptions;
  /** Close a connection that made no progress for this long (default 300 s, like the protocol port). */
  idleTimeoutMs?: number;
  /** Time for every deadline (default: the server's clock). */
  clock?: Clock;
}

const ALLOWED = 'GET, HEAD, PUT, DELETE, MOVE, MKCOL, OPTIONS';

/**
 * The HTTP door (`ferry serve --http-port`): files, folders, uploads and changes over HTTP/1.1
 * (HTTPS with --tls), on the same store, tokens and connection caps as the protocol port.
 * node:http is used directly: the door is a dozen routes over one store, and every part a
 * framework would add (routing, body parsing) is either trivial here or must be done with
 * the store's own streaming upload path anyway.
 */
export class HttpDoor {
  private server: http.Server | undefined;
  private readonly watches = new WeakMap<net.Socket, ConnectionWatch>();
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private closing: Promise<void> | undefined;
  private readonly store: StoreBackend;
  private readonly log: Logger;
  private readonly limiter: ConnectionLimiter;
  private readonly clock: Clock;
  private readonly idleTimeoutMs: number;
  private ctx: DoorContext | undefined;
  private tus: TusEndpoint | undefined;

  constructor(
    context: PluginContext,
    private readonly options: HttpDoorOptions,
  ) {
    this.store = context.store;
    this.log = context.log;
    this.limiter = context.limiter;
    this.clock = options.clock ?? context.clock;
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_HTTP_IDLE_TIMEOUT_MS;
  }

  async listen(host: string): Promise<ListeningAddress> {
    const tokens = typeof this.options.tokens === 'string' ? await Tokens.load(this.options.tokens) : this.options.tokens;
    const access = new Access(tokens, this.clock);
    this.ctx = { store: this.store, log: this.log, access, clock: this.clock, watchOf: (req) => this.watches.get(req.socket) };
    this.tus = new TusEndpoint(this.ctx, this.idleTimeoutMs);
    const handler = (req: IncomingMessage, res: ServerResponse): void => void this.handle(req, res);
    let server: http.Server;
    if (this.options.tls) {
      const credentials = await loadServerCredentials(this.store.stateDir, this.options.tls === true ? {} : this.options.tls);
      serverContext(credentials); // refuses a key that does not fit the certificate, with the protocol port's message
      server = https.createServer({ cert: credentials.cert, key: credentials.key, minVersion: MIN_TLS_VERSION, ciphers: preferredCiphers() }, handler);
      server.on('secureConnection', (socket: net.Socket) => this.watch(socket));
    } else {
      server = http.createServer(handler);
    }
    // Deadlines are ours, on the Clock (ConnectionWatch): Node's whole-request timeout would cut long uploads.
    server.requestTimeout = 0;
    server.on('connection', (socket: net.Socket) => this.admit(socket, !this.options.tls));
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      (req as IncomingMessage & { [EXPECTS_CONTINUE]?: boolean })[EXPECTS_CONTINUE] = true;
      handler(req, res);
    });
    server.on('clientError', (error: NodeJS.ErrnoException, socket: net.Socket) => {
      if (socket.writable && !socket.destroyed && error.code !== 'ECONNRESET') {
        socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      } else {
        socket.destroy();
      }
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port: this.options.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return this.address;
  }

  get address(): ListeningAddress {
    const address = this.server?.address();
    if (!address || typeof address === 'string') throw new Error('the HTTP door is not listening');
    return { host: address.address, port: address.port };
  }

  /** Counts the connection against the server's caps before anything is read from it. */
  private admit(socket: net.Socket, plain: boolean): void {
    socket.on('error', () => undefined);
    const admission = this.limiter.admit(socket.remoteAddress);
    if (!admission.ok || this.closing) {
      const reason = admission.ok ? 'the server is shutting down' : admission.reason;
      if (admission.ok) admission.release();
      this.log.warn({ peer: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`, reason }, 'http connection refused');
      if (plain) socket.end(`HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(reason) + 1}\r\n\r\n${reason}\n`);
      else socket.destroy();
      return;
    }
    socket.once('close', admission.release);
    if (plain) this.watch(socket);
  }

  private watch(socket: net.Socket): void {
    const watch = new ConnectionWatch(socket, this.clock, this.idleTimeoutMs, () => {
      this.log.info({ peer: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}` }, `http connection closed: no progress for ${this.idleTimeoutMs / 1000} s (idle timeout)`);
      socket.destroy();
    });
    this.watches.set(socket, watch);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.inFlight++;
    res.once('close', () => {
      this.inFlight--;
      if (this.inFlight === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    });
    this.watches.get(req.socket)?.touch();
    try {
      await this.route(req, res);
    } catch (thrown) {
      const error = asFerryError(thrown);
      if (error.code === 'INTERNAL') this.log.error({ err: thrown, method: req.method, url: req.url }, 'http request failed');
      else this.log.debug({ method: req.method, url: req.url, code: error.code }, 'http request refused');
      // A body we did not read: close rather than read (or let Node drain) what may be gigabytes.
      const unread = !req.complete;
      if (unread) req.pause();
      sendError(req, res, error, { close: unread, headers: challenge(error) });
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const ctx = this.ctx!;
    const url = req.url ?? '/';
    const method = req.method ?? 'GET';
    if (url.startsWith(INTERNAL_PREFIX)) {
      const rest = url.slice(INTERNAL_PREFIX.length);
      if (rest.startsWith('web/') && (method === 'GET' || method === 'HEAD')) return serveAsset(req, res, rest.slice(4).split('?')[0]!);
      if (rest === TUS_PATH || rest.startsWith(`${TUS_PATH}/`)) return this.tus!.handle(req, res, rest.slice(TUS_PATH.length + 1));
      throw new FerryError('NOT_FOUND', 'no such page');
    }
    if (method === 'OPTIONS') {
      res.writeHead(204, { Allow: ALLOWED });
      res.end();
      return;
    }
    const target = parseTarget(url);
    switch (method) {
      case 'GET':
      case 'HEAD': {
        await ctx.access.check(req, 'read');
        const query = url.includes('?') ? url.slice(url.indexOf('?')) : '';
        if (target.name === '' || target.folder) {
          if (target.query.get('download') === 'tar') return serveTar(req, res, ctx, target.name);
          return serveListing(req, res, ctx, target.name, query);
        }
        try {
          return await serveFile(req, res, this.store, target.name, flag(target.query, 'download'));
        } catch (error) {
          if (!(error instanceof FerryError && error.code === 'CONFLICT' && /is a folder/.test(error.message))) throw error;
          // A folder named without its slash: the canonical address, so relative links work.
          res.writeHead(301, { Location: `${url.split('?')[0]}/${query}`, 'Content-Length': 0 });
          res.end();
          return;
        }
      }
      case 'PUT':
        return handlePut(req, res, ctx, target);
      case 'DELETE':
        return handleDelete(req, res, ctx, target);
      case 'MOVE':
        return handleMove(req, res, ctx, target);
      case 'MKCOL':
        return handleMkcol(req, res, ctx, target);
      default:
        res.setHeader('Allow', ALLOWED);
        throw new FerryError('UNSUPPORTED', `${method} is not supported here (allowed: ${ALLOWED})`);
    }
  }

  /**
   * Stops accepting, gives requests in flight up to `graceMs` to finish, then closes every
   * connection (uploads not committed by then store nothing; resumable ones keep their bytes).
   */
  close(graceMs = 5000): Promise<void> {
    this.closing ??= (async () => {
      const server = this.server;
      if (!server) return;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      if (this.inFlight > 0) {
        let timer: Timer | undefined;
        await Promise.race([
          new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
          new Promise<void>((resolve) => (timer = this.clock.setTimer(graceMs, resolve))),
        ]);
        timer?.cancel();
      }
      server.closeAllConnections();
      await this.tus?.close();
      await stopped;
    })();
    return this.closing;
  }
}
