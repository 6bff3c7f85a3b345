import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { connect } from '../../src/index.js';
import { startServeProcess } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';

const onLinux = process.platform === 'linux';

/** Threads of a running `ferry serve` once a durable upload has started libuv's thread pool. */
async function threadsAfterUpload(threadPoolSize: string | undefined): Promise<number> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.UV_THREADPOOL_SIZE;
  if (threadPoolSize !== undefined) env.UV_THREADPOOL_SIZE = threadPoolSize;
  const server = await startServeProcess(['--host', '127.0.0.1', '--root', await tempDir()], { env });
  try {
    const client = await connect({ host: '127.0.0.1', port: server.port });
    await client.put(Buffer.from('durable'), 'synced.txt');
    await client.close();
    return readdirSync(`/proc/${server.child.pid}/task`).length;
  } finally {
    await server.stop();
  }
}

describe('ferry serve: thread pool', { skip: onLinux ? false : 'counts threads in /proc: Linux only' }, () => {
  it('runs 16 libuv threads for its fsyncs unless UV_THREADPOOL_SIZE says otherwise', async () => {
    const chosen = await threadsAfterUpload(undefined);
    const two = await threadsAfterUpload('2');
    assert.equal(chosen - two, 16 - 2, `threads: ${chosen} by default, ${two} with UV_THREADPOOL_SIZE=2`);
  });
});
