import { createServer, DEFAULT_HOST, DEFAULT_PORT, DEFAULT_ROOT, type ServerOptions } from '../../index.js';
import { MAX_TTL_SECONDS, parseCount, parsePort, parseSeconds, parseSize } from '../numbers.js';
import { UsageError } from '../exit.js';
import { parseS3Url, type S3Location } from '../../storage/s3/location.js';

export interface ServeOptions {
  host?: string;
  port?: string;
  root?: string;
  store?: string;
  s3Endpoint?: string;
  name?: string;
  fsync?: boolean;
  maxFileSize?: string;
  grace?: string;
  rawPort?: string;
  httpPort?: string;
  rawIdleTimeout?: string;
  partialTtl?: string;
  rawAnonymous?: boolean;
  tokens?: string;
  tls?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  maxConnections?: string;
  maxPerIp?: string;
  handshakeTimeout?: string;
  idleTimeout?: string;
  quota?: string;
  maxPartials?: string;
  maxPartialBytes?: string;
  maxOpenFiles?: string;
  digest?: 'auto' | 'sha256';
  config?: string;
  check?: boolean;
  metricsPort?: string;
}

/** The server's options from the command's; a bad combination is a UsageError naming the flags. */
export function serverOptions(options: ServeOptions): ServerOptions {
  const port = options.port === undefined ? DEFAULT_PORT : parsePort(options.port);
  if (options.tokens !== undefined && options.rawPort !== undefined && !options.rawAnonymous) {
    throw new UsageError('the raw port cannot check tokens: add --raw-anonymous to accept anonymous raw uploads alongside --tokens');
  }
  if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) {
    throw new UsageError('give both --tls-cert and --tls-key, or neither (--tls alone uses a self-signed certificate)');
  }
  const tls = options.tlsCert !== undefined && options.tlsKey !== undefined ? { certFile: options.tlsCert, keyFile: options.tlsKey } : options.tls === true;
  return {
    s3: s3Options(options),
    host: options.host ?? DEFAULT_HOST,
    port,
    root: options.root ?? DEFAULT_ROOT,
    serverName: options.name,
    fsync: options.fsync !== false,
    digest: options.digest,
    partialTtlMs: options.partialTtl === undefined ? undefined : parseSeconds(options.partialTtl, '--partial-ttl', 1, MAX_TTL_SECONDS),
    maxFileSize: options.maxFileSize === undefined ? undefined : parseSize(options.maxFileSize, '--max-file-size'),
    rawPort: options.rawPort === undefined ? undefined : parsePort(options.rawPort, '--raw-port'),
    httpPort: options.httpPort === undefined ? undefined : parsePort(options.httpPort, '--http-port'),
    rawIdleTimeoutMs: options.rawIdleTimeout === undefined ? undefined : parseSeconds(options.rawIdleTimeout, '--raw-idle-timeout'),
    tokens: options.tokens,
    tls,
    maxConnections: options.maxConnections === undefined ? undefined : parseCount(options.maxConnections, '--max-connections'),
    maxPerIp: options.maxPerIp === undefined ? undefined : parseCount(options.maxPerIp, '--max-per-ip'),
    handshakeTimeoutMs: options.handshakeTimeout === undefined ? undefined : parseSeconds(options.handshakeTimeout, '--handshake-timeout'),
    idleTimeoutMs: options.idleTimeout === undefined ? undefined : parseSeconds(options.idleTimeout, '--idle-timeout'),
    quota: options.quota === undefined ? undefined : parseSize(options.quota, '--quota'),
    maxPartials: options.maxPartials === undefined ? undefined : parseCount(options.maxPartials, '--max-partials', 0),
    maxPartialBytes: options.maxPartialBytes === undefined ? undefined : parseSize(options.maxPartialBytes, '--max-partial-bytes', 0),
    maxOpenFiles: options.maxOpenFiles === undefined ? undefined : parseCount(options.maxOpenFiles, '--max-open-files', 16),
    metricsPort: options.metricsPort === undefined ? undefined : parsePort(options.metricsPort, '--metrics-port'),
  };
}

/** `--store s3://BUCKET/PREFIX` and `--s3-endpoint URL`, or undefined for the local folder. */
export function s3Options(options: ServeOptions): S3Location | undefined {
  if (options.store === undefined) {
    if (options.s3Endpoint !== undefined) throw new UsageError('--s3-endpoint needs --store s3://BUCKET/PREFIX');
    return undefined;
  }
  if (!options.store.startsWith('s3://')) throw new UsageError(`--store ${options.store}: expected s3://BUCKET/PREFIX (the local folder is --root)`);
  let location: Pick<S3Location, 'bucket' | 'prefix'>;
  try {
    location = parseS3Url(options.store);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (options.s3Endpoint === undefined) return location;
  let endpoint: URL;
  try {
    endpoint = new URL(options.s3Endpoint);
  } catch {
    endpoint = new URL('invalid:');
  }
  if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:') throw new UsageError(`--s3-endpoint ${options.s3Endpoint}: expected http://HOST:PORT or https://HOST`);
  return { ...location, endpoint: options.s3Endpoint };
}

/** Runs a server until SIGINT/SIGTERM, then stops gracefully and resolves. */
export async function serve(options: ServeOptions): Promise<void> {
  const server = createServer(serverOptions(options));
  const graceMs = options.grace === undefined ? 5000 : parseSeconds(options.grace, '--grace', 0);
  // Handlers go in before listening: a signal right after the "listening on" line must not kill us.
  const stopped = new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      server.log.info({ signal }, 'stopping: waiting for transfers in flight');
      void server.close(graceMs).then(() => {
        server.log.info('stopped');
        resolve();
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  await server.listen();
  await stopped;
}
