import { FerryServer, type ServerOptions as CoreServerOptions } from './server/server.js';
import { httpPlugin } from './http/plugin.js';
import { rawIngestPlugin } from './services/raw-ingest.js';
import { metricsPlugin } from './services/metrics/plugin.js';

export interface ServerOptions extends CoreServerOptions {
  /** Also listen here (same host) for raw uploads: each connection becomes raw/<n>.file. 0 picks a free port. */
  rawPort?: number;
  /** A raw upload is discarded after this long without a byte (default 10 s). */
  rawIdleTimeoutMs?: number;
  /** Also serve HTTP (HTTPS with `tls`) here, same host, store, tokens and limits (README "Web"). 0 picks a free port. */
  httpPort?: number;
  /** Serve Prometheus metrics at http://HOST:PORT/metrics (same host). 0 picks a free port. */
  metricsPort?: number;
}

/** A ferry server with the plug-ins its options ask for (the server core knows none of them). */
export function createServer(options: ServerOptions = {}): FerryServer {
  const plugins = [...(options.plugins ?? [])];
  if (options.rawPort !== undefined) plugins.push(rawIngestPlugin({ port: options.rawPort, idleTimeoutMs: options.rawIdleTimeoutMs }));
  if (options.httpPort !== undefined) {
    plugins.push(httpPlugin({ port: options.httpPort, tokens: options.tokens, tls: options.tls, idleTimeoutMs: options.idleTimeoutMs, clock: options.clock }));
  }
  if (options.metricsPort !== undefined) plugins.push(metricsPlugin({ port: options.metricsPort }));
  return new FerryServer({ ...options, plugins });
}
