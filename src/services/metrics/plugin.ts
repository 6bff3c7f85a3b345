import http from 'node:http';
import type { ListeningAddress, PluginContext, ServerPlugin } from '../../server/plugin.js';
import { serverMetrics, type ServerMetrics } from './metrics.js';

export interface MetricsOptions {
  /** Port for `GET /metrics` (same host as the server); 0 picks a free one. */
  port: number;
}

/** Scrapers connected at once; a scraper needs one. */
const MAX_SCRAPERS = 16;
/** A scrape request must arrive whole within this long. */
const REQUEST_TIMEOUT_MS = 10_000;

/**
 * `ferry serve --metrics-port P`: Prometheus text at `http://HOST:P/metrics`. Its own small
 * HTTP listener, outside the file connection limits, answering only GET /metrics.
 */
export function metricsPlugin(options: MetricsOptions): ServerPlugin {
  let server: http.Server | undefined;
  let metrics: ServerMetrics | undefined;
  return {
    name: 'metrics',
    async start(context: PluginContext): Promise<ListeningAddress> {
      // Loaded only when metrics are asked for: a client or a plain server never loads prom-client.
      const { default: prom } = await import('prom-client'); // CommonJS: its exports object, under tsc and the bundle alike
      metrics = serverMetrics(prom, context);
      const registry = metrics.registry;
      server = http.createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS }, (request, response) => {
        const url = new URL(request.url ?? '/', 'http://metrics');
        if (url.pathname !== '/metrics') {
          response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at /metrics\n');
          return;
        }
        if (request.method !== 'GET' && request.method !== 'HEAD') {
          response.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' }).end('only GET\n');
          return;
        }
        registry.metrics().then(
          (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(request.method === 'HEAD' ? undefined : text),
          (error: unknown) => {
            context.log.warn({ err: error instanceof Error ? error.message : String(error) }, 'metrics scrape failed');
            response.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
          },
        );
      });
      server.maxConnections = MAX_SCRAPERS;
      const listening = server;
      try {
        await new Promise<void>((resolve, reject) => {
          listening.once('error', reject);
          listening.listen({ host: context.host, port: options.port }, () => {
            listening.off('error', reject);
            resolve();
          });
        });
      } catch (error) {
        metrics.dispose();
        throw error;
      }
      listening.on('error', (error) => context.log.warn({ err: error.message }, 'metrics listener error'));
      const address = listening.address();
      if (address === null || typeof address === 'string') throw new Error('metrics listener has no address');
      return { host: address.address, port: address.port };
    },
    async close(): Promise<void> {
      metrics?.dispose();
      metrics = undefined;
      const closing = server;
      server = undefined;
      if (closing === undefined || !closing.listening) return;
      // A scrape is quick and idempotent: no grace, the scraper just tries again.
      const closed = new Promise<void>((resolve) => closing.close(() => resolve()));
      closing.closeAllConnections();
      await closed;
    },
  };
}
