import { createRequire } from 'node:module';
import type * as crypto from 'node:crypto';
import type * as os from 'node:os';
import type * as tls from 'node:tls';
import type * as workerThreads from 'node:worker_threads';

/**
 * Node modules loaded on first use: `ferry ls` or `rm` needs neither TLS, nor a hash, nor a
 * thread, and loading node:tls, node:crypto and node:worker_threads up front costs about
 * a tenth of a CLI start (measured here); node:os (the known_hosts file's home folder) another
 * ~0.3 ms. Synchronous, like a static import.
 */
const require = createRequire(import.meta.url);

let cryptoModule: typeof crypto | undefined;
let osModule: typeof os | undefined;
let tlsModule: typeof tls | undefined;
let workerThreadsModule: typeof workerThreads | undefined;

export function nodeCrypto(): typeof crypto {
  return (cryptoModule ??= require('node:crypto') as typeof crypto);
}

export function nodeOs(): typeof os {
  return (osModule ??= require('node:os') as typeof os);
}

export function nodeTls(): typeof tls {
  return (tlsModule ??= require('node:tls') as typeof tls);
}

export function nodeWorkerThreads(): typeof workerThreads {
  return (workerThreadsModule ??= require('node:worker_threads') as typeof workerThreads);
}
