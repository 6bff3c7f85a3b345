import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const BIN = fileURLToPath(new URL('../../bin/cli/main.js', import.meta.url));
const canCountThreads = existsSync('/proc/self/task');

/** Starts `ferry serve` on an ephemeral port with `env`, and counts its threads once it listens. */
async function serverThreads(root: string, env: NodeJS.ProcessEnv): Promise<number> {
  const child = spawn(process.execPath, [BIN, 'serve', '--host', '127.0.0.1', '--port', '0', '--root', root], { env, stdio: ['ignore', 'pipe', 'pipe'] });
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

describe('ferry serve widens the thread pool for durable batches', () => {
  it('runs 16 pool threads unless UV_THREADPOOL_SIZE says otherwise', { skip: canCountThreads ? false : 'needs /proc/<pid>/task to count threads (Linux)' }, async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'ferry-pool-'));
    try {
      const env = { ...process.env };
      delete env.UV_THREADPOOL_SIZE;
      const widened = await serverThreads(path.join(dir, 'a'), env);
      const asked = await serverThreads(path.join(dir, 'b'), { ...env, UV_THREADPOOL_SIZE: '2' });
      // The same process but for its pool: 16 threads against the 2 the user asked for.
      assert.equal(widened - asked, 14, `${widened} threads by default, ${asked} with UV_THREADPOOL_SIZE=2`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
