import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WireErrorCode } from '../../src/errors.js';
import { encodeMessage, type Message } from '../../src/protocol/index.js';
import { CLI, runCli, startServeProcess } from '../helpers/cli.js';
import { startFakeServer } from '../helpers/fake-server.js';
import { tempDir } from '../helpers/fixtures.js';

/**
 * Every command ends, on every path: each scenario of issue 10 that used to print its error
 * and then hang runs here as a real `ferry` child process with a time bound.
 */

const BIG = 64 * 1024 * 1024; // large enough for the client's hashing worker thread

/** Runs the CLI and measures how long it took. */
async function timed(args: string[], options: Parameters<typeof runCli>[1] = {}): Promise<Awaited<ReturnType<typeof runCli>> & { ms: number }> {
  const started = Date.now();
  const result = await runCli(args, { timeoutMs: 12_000, ...options });
  return { ...result, ms: Date.now() - started };
}

/** A server that answers STAT with "no such file" and GET/PUT as `onTransfer` wants. */
function notFoundOr(onTransfer: (m: Message, socket: net.Socket) => void): (m: Message, socket: net.Socket) => void {
  return (m, socket) => {
    if (m.type === 'STAT' || m.type === 'PROBE_UPLOAD') {
      if (m.type === 'PROBE_UPLOAD') socket.write(encodeMessage({ type: 'PARTIAL', id: m.id, offset: 0, digest: Buffer.alloc(32) }));
      else socket.write(encodeMessage({ type: 'ERROR', id: m.id, code: WireErrorCode.NOT_FOUND, message: 'no file named "x"' }));
    } else {
      onTransfer(m, socket);
    }
  };
}

/** Accepts a PUT, takes about 2 MiB of its body, then drops the connection as a dying server would. */
function dieDuringUpload(m: Message, socket: net.Socket): void {
  if (m.type !== 'PUT') return;
  socket.write(encodeMessage({ type: 'PUT_READY', id: m.id, offset: 0, prefixDigest: Buffer.alloc(32) }));
  let received = 0;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (received > 2 * 1024 * 1024) socket.resetAndDestroy();
  });
}

describe('ferry exits within its deadlines on every path', { timeout: 120_000 }, () => {
  let work: string;
  let big: string;
  before(async () => {
    work = await tempDir('ferry-exits-');
    big = path.join(work, 'big.bin');
    await fs.writeFile(big, '');
    await fs.truncate(big, BIG); // sparse: no disk, real bytes to read
  });
  after(() => fs.rm(work, { recursive: true, force: true }));

  it('put of a large file whose server dies mid-transfer: exit 1 at once', async () => {
    const fake = await startFakeServer(notFoundOr(dieDuringUpload));
    try {
      const result = await timed(['put', big, '-s', `127.0.0.1:${fake.port}`]);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /^ferry: .*(reset|closed)/);
      assert.ok(result.ms < 8000, `took ${result.ms} ms`);
    } finally {
      await fake.close();
    }
  });

  it('get of a large file whose server dies mid-transfer: exit 1 at once, the partial kept for a resume', async () => {
    const fake = await startFakeServer(
      notFoundOr((m, socket) => {
        if (m.type !== 'GET') return;
        socket.write(encodeMessage({ type: 'GET_OK', id: m.id, size: BIG, offset: 0, mtimeMs: 0, digest: Buffer.alloc(32) }));
        socket.write(Buffer.alloc(2 * 1024 * 1024), () => socket.resetAndDestroy());
      }),
    );
    try {
      const target = path.join(work, 'died.bin');
      const result = await timed(['get', 'big.bin', '-o', target, '-s', `127.0.0.1:${fake.port}`]);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /^ferry: .*(reset|closed)/);
      assert.ok(result.ms < 8000, `took ${result.ms} ms`);
      assert.ok((await fs.stat(`${target}.ferry-part`)).size > 0, 'the partial download is kept');
    } finally {
      await fake.close();
    }
  });

  it('get whose server announces 8 MiB and then stalls: exit 1 once --timeout passes', async () => {
    const fake = await startFakeServer(
      notFoundOr((m, socket) => {
        if (m.type !== 'GET') return;
        socket.write(encodeMessage({ type: 'GET_OK', id: m.id, size: 8 * 1024 * 1024, offset: 0, mtimeMs: 0, digest: Buffer.alloc(32) }));
        socket.write(Buffer.alloc(64 * 1024)); // then nothing
      }),
    );
    try {
      const result = await timed(['get', 'stall.bin', '-o', path.join(work, 'stall.bin'), '--timeout', '1', '-s', `127.0.0.1:${fake.port}`]);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /^ferry: the server sent nothing for 1 s\n$/);
      assert.ok(result.ms < 6000, `took ${result.ms} ms`);
    } finally {
      await fake.close();
    }
  });

  it('a stdin upload refused as over --max-file-size: exit 1 at once', async () => {
    const root = path.join(work, 'small-store');
    const server = await startServeProcess(['--root', root, '--max-file-size', '1M']);
    try {
      const input = Buffer.alloc(4 * 1024 * 1024, 0x61).toString('latin1');
      const result = await timed(['put', '-', '--as', 'piped.bin', '-s', `127.0.0.1:${server.port}`], { input });
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /^ferry: .*(larger|too large|limit|max)/i);
      assert.ok(result.ms < 8000, `took ${result.ms} ms`);
    } finally {
      await server.stop();
    }
  });

  it('`until ferry put f; do …; done` ends: the first try dies mid-upload, the next are refused', async () => {
    // The server dies for good during the first attempt: later attempts are refused at once.
    let closing: Promise<void> | undefined;
    const fake: Awaited<ReturnType<typeof startFakeServer>> = await startFakeServer(
      notFoundOr((m, socket) => {
        dieDuringUpload(m, socket);
        socket.once('close', () => (closing ??= fake.close()));
      }),
    );
    const port = fake.port;
    const script = `n=0; until "${process.execPath}" "${CLI}" put "${big}" -s 127.0.0.1:${port}; do n=$((n+1)); [ $n -ge 3 ] && exit 7; sleep 0.2; done`;
    const started = Date.now();
    // Its own process group, so a hung attempt inside the loop is killed with it.
    const child = spawn('bash', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FERRY_SERVER: '' }, detached: true });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 20_000);
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    clearTimeout(timer);
    const ms = Date.now() - started;
    await closing;
    assert.equal(code, 7, stderr);
    assert.ok(ms < 15_000, `took ${ms} ms`);
    // Reset or FIN depends on whether the dying server had unread bytes: both are one line.
    assert.match(stderr, /^ferry: (connection to 127\.0\.0\.1:\d+ was reset|the server at 127\.0\.0\.1:\d+ closed the connection)\n(ferry: connection refused by .*\n){2}$/);
  });
});

describe('Ctrl-C during a transfer on a terminal', { timeout: 30_000 }, () => {
  it('restores the cursor, says how to resume, and exits 130', async () => {
    const work = await tempDir('ferry-ctrlc-');
    let timer: NodeJS.Timeout | undefined;
    const fake = await startFakeServer(
      notFoundOr((m, socket) => {
        if (m.type !== 'GET') return;
        socket.write(encodeMessage({ type: 'GET_OK', id: m.id, size: BIG, offset: 0, mtimeMs: 0, digest: Buffer.alloc(32) }));
        timer = setInterval(() => (socket.destroyed ? clearInterval(timer) : socket.write(Buffer.alloc(64 * 1024))), 50);
      }),
    );
    // util-linux `script` gives ferry a pseudo-terminal, so it draws a progress bar (and hides the cursor).
    const command = `'${process.execPath}' '${CLI}' get big.bin -o '${path.join(work, 'big.bin')}' -s 127.0.0.1:${fake.port}`;
    const tty = spawn('script', ['-qfec', command, '/dev/null'], { cwd: work, env: { ...process.env, TERM: 'xterm', CI: '' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    tty.stdout.on('data', (d: Buffer) => (screen += d.toString()));
    const exited = new Promise<number | null>((resolve) => tty.on('close', resolve));
    try {
      const deadline = Date.now() + 10_000;
      while (!/get big\.bin \[/.test(screen)) {
        if (Date.now() > deadline) throw new Error(`no progress bar: ${JSON.stringify(screen)}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      tty.stdin.write('\u0003');
      const code = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 5000))]);
      assert.equal(code, 130, screen);
      assert.ok(screen.lastIndexOf('\u001b[?25h') > screen.lastIndexOf('\u001b[?25l'), `cursor left hidden: ${JSON.stringify(screen)}`);
      assert.match(screen, /ferry: interrupted: run the same command again to resume/);
    } finally {
      clearInterval(timer);
      tty.kill('SIGKILL');
      await fake.close();
      await fs.rm(work, { recursive: true, force: true });
    }
  });
});
