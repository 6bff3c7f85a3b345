import { promises as fs } from 'node:fs';
import type * as PromModule from 'prom-client';
import type { Traffic } from '../../server/events.js';
import type { PluginContext } from '../../server/plugin.js';

/**
 * The server's Prometheus metrics, on a Registry of its own (prom-client's global default
 * registry is never touched). Labels are request types and result codes only: never a file
 * name, a peer address or a token.
 */

/** Transfer durations, seconds: from a small file on loopback to a large one over a slow link. */
/** prom-client's exports object (a CommonJS module: what `import()` gives as `default`). */
type PromClient = typeof PromModule.default;

const DURATION_BUCKETS = [0.001, 0.005, 0.025, 0.1, 0.5, 1, 2.5, 10, 30, 60, 300, 1800, 7200];

export interface ServerMetrics {
  registry: PromModule.Registry;
  /** Stops listening to the server's events. */
  dispose(): void;
}

let processRegistry: PromModule.Registry | undefined;

/**
 * The process metrics (CPU, memory, event loop lag, GC, handles): one set per process, shared
 * by every metrics server in it — prom-client's collectors for them cannot be stopped, so one
 * set per server would pile up observers in a process that starts many.
 */
function processMetrics(prom: PromClient): PromModule.Registry {
  if (processRegistry === undefined) {
    processRegistry = new prom.Registry();
    prom.collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export function serverMetrics(prom: PromClient, context: PluginContext): ServerMetrics {
  const { store, limiter, events } = context;
  const registry = new prom.Registry();
  const registers = [registry];

  new prom.Gauge({
    name: 'ferry_connections_open',
    help: 'Connections open now, over every port (protocol and raw ingest).',
    registers,
    collect() {
      this.set(limiter.count);
    },
  });
  new prom.Counter({
    name: 'ferry_connections_refused_total',
    help: 'Connections refused by --max-connections or --max-per-ip, over every port.',
    registers,
    collect() {
      this.reset();
      this.inc(limiter.refused);
    },
  });

  const requests = new prom.Counter({
    name: 'ferry_requests_total',
    help: 'Requests answered on the protocol port, by type and result (OK, a wire error name, or CLOSED when the connection ended first).',
    labelNames: ['type', 'result'] as const,
    registers,
  });
  const durations = new prom.Histogram({
    name: 'ferry_transfer_duration_seconds',
    help: 'Time from a PUT or GET request to its last reply byte handed to the socket, for transfers that succeeded.',
    labelNames: ['type'] as const,
    buckets: DURATION_BUCKETS,
    registers,
  });
  const authFailures = new prom.Counter({ name: 'ferry_auth_failures_total', help: 'Tokens not accepted.', registers });

  // Bytes: finished connections' totals plus what the open ones have moved so far.
  const open = new Set<Traffic>();
  let closedIn = 0;
  let closedOut = 0;
  const bytes = (name: string, help: string, count: (t: Traffic) => number, closed: () => number): void => {
    new prom.Counter({
      name,
      help,
      registers,
      collect() {
        let total = closed();
        for (const traffic of open) total += count(traffic);
        this.reset();
        this.inc(total);
      },
    });
  };
  bytes('ferry_received_bytes_total', 'Bytes received on protocol connections (on the wire: TLS included).', (t) => t.bytesRead, () => closedIn);
  bytes('ferry_sent_bytes_total', 'Bytes sent on protocol connections (on the wire: TLS included).', (t) => t.bytesWritten, () => closedOut);

  new prom.Gauge({
    name: 'ferry_partial_uploads',
    help: 'Interrupted uploads kept for resuming.',
    registers,
    collect() {
      this.set(store.partials.count);
    },
  });
  new prom.Gauge({
    name: 'ferry_partial_upload_bytes',
    help: 'Bytes held by interrupted uploads kept for resuming.',
    registers,
    collect() {
      this.set(store.space.partials);
    },
  });
  if (store.quota !== undefined) {
    const quota = store.quota;
    new prom.Gauge({ name: 'ferry_store_quota_bytes', help: 'The store\'s --quota.', registers, collect() { this.set(quota); } });
    new prom.Gauge({
      name: 'ferry_store_used_bytes',
      help: 'Bytes counted against the quota: stored files, kept partial uploads and room reserved for uploads in progress.',
      registers,
      collect() {
        const space = store.space;
        this.set(space.stored + space.partials + space.reserved);
      },
    });
  }
  const disk = (name: string, help: string, pick: (s: { bavail: number; blocks: number; bsize: number }) => number): void => {
    new prom.Gauge({
      name,
      help,
      registers,
      async collect() {
        const stats = await fs.statfs(store.root).catch(() => undefined);
        if (stats) this.set(pick(stats) * stats.bsize);
      },
    });
  };
  disk('ferry_disk_free_bytes', 'Space free for the server on the disk holding the store.', (s) => s.bavail);
  disk('ferry_disk_size_bytes', 'Size of the disk holding the store.', (s) => s.blocks);

  const stops = [
    events.on('connection', (traffic) => open.add(traffic)),
    events.on('disconnection', (traffic) => {
      if (!open.delete(traffic)) return;
      closedIn += traffic.bytesRead;
      closedOut += traffic.bytesWritten;
    }),
    events.on('request', ({ type, result, durationMs }) => {
      requests.inc({ type, result });
      if (result === 'OK' && (type === 'PUT' || type === 'GET')) durations.observe({ type }, durationMs / 1000);
    }),
    events.on('auth-failed', () => authFailures.inc()),
  ];
  return {
    registry: prom.Registry.merge([registry, processMetrics(prom)]),
    dispose: () => {
      for (const stop of stops) stop();
      open.clear();
    },
  };
}
