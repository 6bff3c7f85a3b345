import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, runCli, sha256, spawnWatched, startServer, tempDir, type RunningServer } from './helpers.js';

/** An expected failure of the raw sender: exactly one line, starting with "ferry:". */
function assertErrorLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got: ${stderr}`);
  assert.match(lines[0]!, /^ferry: /);
  assert.match(lines[0]!, pattern);
}

/** A TCP peer the test controls; `onConnection` decides how badly it behaves. */
async function peer(onConnection: (socket: net.Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('ferry put --raw', { timeout: 30_000 }, () => {
  let work: string;
  let file: string;
  let data: Buffer;
  let ferry: RunningServer;

  before(async () => {
    work = await tempDir();
    data = randomBytes(1024 * 1024 + 3);
    file = path.join(work, 'photo.jpg');
    await fs.writeFile(file, data);
    ferry = await startServer({ root: path.join(work, 'store'), maxFileSize: 2 * 1024 * 1024 });
  });
  after(async () => {
    await ferry.stop();
    await fs.rm(work, { recursive: true, force: true });
  });

  it('streams the plain bytes to a ferry raw port and returns once it is stored', async () => {
    const result = await runCli(['put', '--raw', file, '-s', `127.0.0.1:${ferry.rawPort}`]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`^sent .*photo\\.jpg to 127\\.0\\.0\\.1:${ferry.rawPort} .*sha256 ${sha256(data)}`));
    // The sender only returns after the receiver closed, which the raw port does once stored.
    const stored = await fs.readFile(path.join(ferry.root, 'raw', '1.file'));
    assert.ok(stored.equals(data));
  });

  it('streams to a plain `nc -l` receiver', async () => {
    const port = await freePort();
    const nc = spawnWatched('sh', ['-c', `exec nc -l 127.0.0.1 ${port} < /dev/null > received.bin`], { cwd: work });
    try {
      let result;
      for (let attempt = 0; ; attempt++) {
        result = await runCli(['put', '--raw', file, '-s', `127.0.0.1:${port}`, '--quiet']);
        if (result.code === 0 || attempt === 20) break;
        await new Promise((resolve) => setTimeout(resolve, 50)); // nc may still be starting
      }
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, '');
      assert.equal((await nc.exited(5000)).code, 0);
      assert.ok((await fs.readFile(path.join(work, 'received.bin'))).equals(data));
    } finally {
      nc.process.kill('SIGKILL');
    }
  });

  it('reports a refused connection as one ferry: line, exit 1', async () => {
    const port = await freePort();
    const result = await runCli(['put', '--raw', file, '-s', `127.0.0.1:${port}`]);
    assert.equal(result.code, 1);
    assertErrorLine(result.stderr, /connection refused by 127\.0\.0\.1:\d+/);
  });

  it('reports a receiver that resets the connection (a raw port over its size limit)', async () => {
    const big = path.join(work, 'big.bin');
    await fs.writeFile(big, randomBytes(8 * 1024 * 1024));
    const result = await runCli(['put', '--raw', big, '-s', `127.0.0.1:${ferry.rawPort}`]);
    assert.equal(result.code, 1);
    assertErrorLine(result.stderr, /connection reset by 127\.0\.0\.1:\d+/);
  });

  it('gives up on a receiver that takes the bytes but never closes (--timeout)', async () => {
    const silent = await peer((socket) => socket.resume());
    try {
      const started = Date.now();
      const result = await runCli(['put', '--raw', file, '-s', `127.0.0.1:${silent.port}`, '--timeout', '0.5']);
      assert.equal(result.code, 1);
      assertErrorLine(result.stderr, /did not close the connection within 0\.5 s after all \d+ bytes were sent/);
      assert.ok(Date.now() - started < 5000);
    } finally {
      await silent.close();
    }
  });

  it('gives up on a receiver that stops reading (stall timeout)', async () => {
    const stuck = await peer((socket) => socket.pause());
    const huge = path.join(work, 'huge.bin');
    await fs.writeFile(huge, Buffer.alloc(64 * 1024 * 1024));
    try {
      const result = await runCli(['put', '--raw', huge, '-s', `127.0.0.1:${stuck.port}`, '--timeout', '0.5']);
      assert.equal(result.code, 1);
      assertErrorLine(result.stderr, /no progress for 0\.5 s sending to 127\.0\.0\.1:\d+ \(\d+ of 67108864 bytes sent\)/);
    } finally {
      await stuck.close();
    }
  });

  it('reports a missing file as one ferry: line, and usage mistakes as exit 2', async () => {
    const missing = await runCli(['put', '--raw', path.join(work, 'nope'), '-s', `127.0.0.1:${ferry.rawPort}`]);
    assert.equal(missing.code, 1);
    assertErrorLine(missing.stderr, /no such local file/);
    const noServer = await runCli(['put', '--raw', file]);
    assert.equal(noServer.code, 2);
    assert.match(noServer.stderr, /--raw needs the receiver's address: -s HOST:PORT/);
    const badTimeout = await runCli(['put', '--raw', file, '-s', `127.0.0.1:${ferry.rawPort}`, '--timeout', '0']);
    assert.equal(badTimeout.code, 2);
  });
});
