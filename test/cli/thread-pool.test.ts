import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const BIN = fileURLToPath(new URL('../../bin/cli/main.js', import.meta.url));
/** The copy the bin loads (dist/bin/cli/thread-pool.js, from scripts/thread-pool.cjs). */
const { syncsLocally } = createRequire(import.meta.url)('../../bin/cli/thread-pool.js') as { syncsLocally: (args: string[]) => boolean };
const canCountThreads = existsSync('/proc/self/task');

/** Starts `ferry serve` on an ephemeral port with `env`, and counts its threads once it listens. */
async function serverThreads(root: string, env: NodeJS.ProcessEnv, extra: string[] = []): Promise<number> {
  const child = spawn(process.execPath, [BIN, 'serve', '--host', '127.0.0.1', '--port', '0', '--root', root, ...extra], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    await new Promise<void>((resolve, reject) => {
      let output = '';
      const timer = setTimeout(() => reject(new Error(`the server did not start: ${output}`)), 20_000);
      const look = (chunk: Buffer): void => {
        output += chunk.toString();
        if (output.includes('listening on')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout.on('data', look);
      child.stderr.on('data', look);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the server exited (${code}): ${output}`));
      });
    });
    return (await readdir(`/proc/${child.pid}/task`)).length;
  } finally {
    child.kill('SIGKILL');
  }
}

describe('ferry serve widens the thread pool for durable batches on a local folder', () => {
  it('runs 16 pool threads unless UV_THREADPOOL_SIZE says otherwise, and 4 with --no-fsync', { skip: canCountThreads ? false : 'needs /proc/<pid>/task to count threads (Linux)' }, async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'ferry-pool-'));
    try {
      const env = { ...process.env };
      delete env.UV_THREADPOOL_SIZE;
      const widened = await serverThreads(path.join(dir, 'a'), env);
      const asked = await serverThreads(path.join(dir, 'b'), { ...env, UV_THREADPOOL_SIZE: '2' });
      const noFsync = await serverThreads(path.join(dir, 'c'), env, ['--no-fsync']);
      // The same process but for its pool: 16 threads against the 2 the user asked for, and libuv's 4.
      assert.equal(widened - asked, 14, `${widened} threads by default, ${asked} with UV_THREADPOOL_SIZE=2`);
      assert.equal(widened - noFsync, 12, `${widened} threads by default, ${noFsync} with --no-fsync`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('leaves an S3 store and a server without fsync as they are, from the flags or the config file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'ferry-pool-'));
    try {
      const config = async (name: string, text: string): Promise<string> => {
        const file = path.join(dir, name);
        await writeFile(file, text);
        return file;
      };
      const local = await config('local.toml', 'root = "/srv/ferry"\nport = 4455\n');
      const s3 = await config('s3.toml', 'port = 4455\nstore = "s3://bucket/prefix"\n');
      const fast = await config('fast.toml', 'root = "/srv/ferry"\n  fsync = false\n');
      assert.equal(syncsLocally(['--root', 'x']), true);
      assert.equal(syncsLocally(['--config', local]), true);
      assert.equal(syncsLocally([`--config=${local}`, '--port', '1']), true);
      assert.equal(syncsLocally(['--store', 's3://b/p']), false);
      assert.equal(syncsLocally(['--store=s3://b/p']), false);
      assert.equal(syncsLocally(['--no-fsync']), false);
      assert.equal(syncsLocally(['--config', s3]), false);
      assert.equal(syncsLocally([`--config=${fast}`]), false);
      assert.equal(syncsLocally(['--config', path.join(dir, 'missing.toml')]), false, 'an unreadable config: left to the full CLI to report');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
