'use strict';
// Copied by scripts/bundle-cli.mjs to dist/bin/cli/thread-pool.js; the bin (main.js) calls it
// for `ferry serve` before anything has used libuv's thread pool, whose size libuv reads once,
// at the first use. It lives with the bin, not in src/: only the program that owns the process
// may change it, never the library.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a CommonJS file the CommonJS bin requires
const { readFileSync } = require('node:fs');

/**
 * Threads for a server on a local folder with fsync. Why: its durable batches sync 32 small
 * files at once (src/storage/batch.ts) and concurrent fdatasyncs share the journal's commits;
 * libuv's default 4 threads run 4 at a time. Not for an S3 store (nothing to sync locally, and
 * each thread's glibc arena cost it ~10-14 MB of peak RSS over a 1 GiB put and get) nor for
 * --no-fsync, which syncs nothing.
 */
const SERVER_THREADS = 16;

/** Whether `ferry serve` with these arguments keeps a local folder with fsync (the default). */
function syncsLocally(args) {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--no-fsync' || arg === '--store' || arg.startsWith('--store=')) return false;
    const config = arg === '--config' ? args[i + 1] : arg.startsWith('--config=') ? arg.slice('--config='.length) : undefined;
    if (config !== undefined) {
      let text;
      try {
        text = readFileSync(config, 'utf8');
      } catch {
        return false; // the full CLI says what is wrong with it
      }
      if (/^\s*(store\s*=|fsync\s*=\s*false)/m.test(text)) return false;
    }
  }
  return true;
}

/** Sets UV_THREADPOOL_SIZE for a local, durable server unless the user set it. */
function widenThreadPool(args, env = process.env) {
  if (env.UV_THREADPOOL_SIZE === undefined && syncsLocally(args)) env.UV_THREADPOOL_SIZE = String(SERVER_THREADS);
}

module.exports = { widenThreadPool, syncsLocally };
