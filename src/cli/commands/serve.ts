import { createServer, DEFAULT_HOST, DEFAULT_PORT, DEFAULT_ROOT } from '../../index.js';
import { parsePort } from '../address.js';
import { parseSeconds } from '../seconds.js';
import { parseSize } from '../sizes.js';

export interface ServeOptions {
  host?: string;
  port?: string;
  root?: string;
  name?: string;
  fsync?: boolean;
  maxFileSize?: string;
  grace?: string;
  rawPort?: string;
  rawIdleTimeout?: string;
}

/** Runs a server until SIGINT/SIGTERM, then stops gracefully and resolves. */
export async function serve(options: ServeOptions): Promise<void> {
  const port = options.port === undefined ? DEFAULT_PORT : parsePort(options.port);
  const server = createServer({
    host: options.host ?? DEFAULT_HOST,
    port,
    root: options.root ?? DEFAULT_ROOT,
    serverName: options.name,
    fsync: options.fsync !== false,
    maxFileSize: options.maxFileSize === undefined ? undefined : parseSize(options.maxFileSize, '--max-file-size'),
    rawPort: options.rawPort === undefined ? undefined : parsePort(options.rawPort),
    rawIdleTimeoutMs: options.rawIdleTimeout === undefined ? undefined : parseSeconds(options.rawIdleTimeout, '--raw-idle-timeout'),
  });
  const graceMs = options.grace === undefined ? 5000 : Number(options.grace) * 1000;
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
