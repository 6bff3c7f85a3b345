import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** What one request asked the store: `HEAD`, `GET`, `PUT`, `LIST`, `POST`, `DELETE`, … */
export type RequestKind = string;

/**
 * An HTTP proxy on 127.0.0.1 in front of the S3 store, counting the requests that pass (a
 * bucket listing counts as LIST, not GET). Requests keep their Host header, so SigV4
 * signatures made for the proxy's address still verify at the store (path-style addressing).
 */
export class CountingProxy {
  readonly counts = new Map<RequestKind, number>();
  /** The last requests (method, path and query, headers as received), oldest first. */
  readonly seen: { method: string; url: string; headers: http.IncomingHttpHeaders }[] = [];
  /** Awaited before a request is passed on (a test acting on the store between two requests). */
  beforeForward: ((kind: RequestKind, url: string) => Promise<void> | undefined) | undefined;
  /** Requests under way now, and the most at once since the last reset. */
  inFlight = 0;
  mostInFlight = 0;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

  private constructor(
    private readonly server: http.Server,
    readonly endpoint: string,
  ) {}

  static async start(upstream: string): Promise<CountingProxy> {
    const target = new URL(upstream);
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new CountingProxy(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => proxy.forward(target, req, res));
    return proxy;
  }

  /** Requests of `kind` so far (all kinds when undefined). */
  count(kind?: RequestKind): number {
    if (kind !== undefined) return this.counts.get(kind) ?? 0;
    let total = 0;
    for (const n of this.counts.values()) total += n;
    return total;
  }

  reset(): void {
    this.counts.clear();
    this.seen.length = 0;
    this.mostInFlight = this.inFlight;
  }

  async close(): Promise<void> {
    this.agent.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private forward(target: URL, req: http.IncomingMessage, res: http.ServerResponse): void {
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    const kind = req.method === 'GET' && query.has('list-type') ? 'LIST' : (req.method ?? '?');
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
    this.seen.push({ method: req.method ?? '?', url: req.url ?? '', headers: req.headers });
    if (this.seen.length > 1000) this.seen.shift();
    this.inFlight++;
    this.mostInFlight = Math.max(this.mostInFlight, this.inFlight);
    res.once('close', () => this.inFlight--);
    const held = this.beforeForward?.(kind, req.url ?? '');
    if (held === undefined) this.pass(target, req, res);
    else {
      req.pause();
      held.then(
        () => this.pass(target, req, res),
        () => res.destroy(),
      );
    }
  }

  private pass(target: URL, req: http.IncomingMessage, res: http.ServerResponse): void {
    const out = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent: this.agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    out.on('error', () => res.destroy());
    req.pipe(out);
  }
}
