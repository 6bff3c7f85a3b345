import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs, readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, createServer } from '../../src/index.js';
import { MAX_TIMER_MS } from '../../src/clock.js';
import { RawIngestServer, rawIngestPlugin } from '../../src/services/raw-ingest.js';
import { Store } from '../../src/storage/store.js';
import { ConnectionLimiter } from '../../src/transport/limits.js';
import { digestHex } from '../helpers/fixtures.js';
import { ManualClock } from '../helpers/manual-clock.js';
import {
  captureLogger,
  connectRaw,
  eventually,
  filesUnder,
  rawUpload,
  runCli,
  sha256,
  spawnCli,
  startServer,
  tempDir,
  temporaries,
} from './helpers.js';

/** `cmd < file`, resolving with the exit code (killed after `ms`). */
function runWithStdin(command: string, args: string[], file: string, ms = 8000): Promise<number | null> {
  return new Promise((resolve, reject) => {
    void fs.open(file, 'r').then((handle) => {
      const child = spawn(command, args, { stdio: [handle.fd, 'ignore', 'pipe'] });
      const timer = setTimeout(() => child.kill('SIGKILL'), ms);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        void handle.close();
        resolve(code);
      });
    }, reject);
  });
}

/** How a raw connection ended, seen from the sender: 'reset' or 'closed' (cleanly, after a FIN). */
function ending(socket: net.Socket): Promise<'reset' | 'closed'> {
  return new Promise((resolve) => {
    let reset = false;
    socket.on('error', () => (reset = true));
    socket.on('close', () => resolve(reset ? 'reset' : 'closed'));
    socket.resume();
  });
}

/** The one upload temporary's size, once there is exactly one. */
async function temporarySize(root: string): Promise<number | undefined> {
  const names = await temporaries(root);
  if (names.length !== 1) return undefined;
  return (await fs.stat(path.join(root, '.ferry', 'tmp', names[0]!)).catch(() => undefined))?.size;
}

function openDescriptors(): number {
  return readdirSync('/proc/self/fd').length;
}

function discarded(records: Record<string, unknown>[]): Record<string, unknown>[] {
  return records.filter((r) => r.msg === 'raw upload discarded');
}

describe('raw ingest port', { timeout: 30_000 }, () => {
  let work: string;

  before(async () => {
    work = await tempDir();
  });
  after(async () => {
    await fs.rm(work, { recursive: true, force: true });
  });

  it('gives concurrent uploads (nc -N, socat, and 20 sockets) distinct numbers and intact contents', async () => {
    const root = path.join(work, 'concurrent');
    const running = await startServer({ root });
    try {
      const viaNc = randomBytes(24 * 1024 * 1024 + 7); // big enough to meet the sink's backpressure
      const viaSocat = randomBytes(2 * 1024 * 1024 + 1);
      await fs.writeFile(path.join(work, 'nc.bin'), viaNc);
      await fs.writeFile(path.join(work, 'socat.bin'), viaSocat);
      const sockets = Array.from({ length: 20 }, (_, i) => randomBytes(10_000 + i * 1000));
      const [ncCode, socatCode, ...results] = await Promise.all([
        runWithStdin('nc', ['-N', '127.0.0.1', String(running.rawPort)], path.join(work, 'nc.bin')),
        runWithStdin('socat', ['-u', 'STDIN', `TCP:127.0.0.1:${running.rawPort}`], path.join(work, 'socat.bin')),
        ...sockets.map((data) => rawUpload(running.rawPort, data)),
      ]);
      assert.equal(ncCode, 0);
      assert.equal(socatCode, 0);
      for (const result of results) assert.equal(result.reset, false);

      // SHA-256: the digest raw ingest records as it stores (a BLAKE3 client gets its own computed).
      const client = await connect({ port: running.address.port, digest: 'sha256' });
      try {
        await eventually(async () => (await client.list('raw')).length === 22, 'all 22 files to be stored');
        const entries = await client.list('raw');
        const numbers = entries.map((e) => Number(/^raw\/(\d+)\.file$/.exec(e.name)?.[1])).sort((a, b) => a - b);
        assert.deepEqual(numbers, Array.from({ length: 22 }, (_, i) => i + 1));
        const sent = new Set([viaNc, viaSocat, ...sockets].map(sha256));
        const stored = new Set(entries.map((e) => e.digest));
        assert.deepEqual(stored, sent, 'every upload stored whole, each under its own number');
        // The recorded sha256 is what a download verifies against.
        const ncEntry = entries.find((e) => e.digest === sha256(viaNc))!;
        const copy = path.join(work, 'nc-copy.bin');
        await client.get(ncEntry.name, copy);
        assert.ok((await fs.readFile(copy)).equals(viaNc));
      } finally {
        await client.close();
      }
      assert.deepEqual(await temporaries(root), []);
    } finally {
      await running.stop();
    }
  });

  it('publishes nothing from a connection that is reset, and says why in one log line', async () => {
    const root = path.join(work, 'reset');
    const running = await startServer({ root });
    try {
      const socket = await connectRaw(running.rawPort);
      socket.on('error', () => undefined);
      await new Promise<void>((resolve) => socket.write(randomBytes(200_000), () => resolve()));
      await eventually(() => running.records.some((r) => r.msg === 'raw connection'), 'the raw connection');
      socket.resetAndDestroy();
      await eventually(() => discarded(running.records).length === 1, 'the discard log line');
      assert.equal(discarded(running.records)[0]!.reason, 'connection reset by the peer');
      await eventually(async () => (await temporaries(root)).length === 0, 'the partial to be removed');
      assert.deepEqual(await filesUnder(root, 'raw'), []);

      // The number of the failed connection is not reused.
      assert.equal((await rawUpload(running.rawPort, Buffer.from('next'))).reset, false);
      assert.deepEqual(await filesUnder(root, 'raw'), ['2.file']);
      assert.equal(discarded(running.records).length, 1);
    } finally {
      await running.stop();
    }
  });

  it('discards an upload idle longer than the raw idle timeout', async () => {
    const root = path.join(work, 'idle');
    const running = await startServer({ root, rawIdleTimeoutMs: 300 });
    try {
      const socket = await connectRaw(running.rawPort);
      const closed = new Promise<string | undefined>((resolve) => {
        socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code));
        socket.on('close', () => resolve(undefined));
      });
      socket.write('a beginning, then silence');
      assert.equal(await closed, 'ECONNRESET', 'the server resets the connection');
      assert.deepEqual(
        discarded(running.records).map((r) => r.reason),
        ['no data for 0.3 s (raw idle timeout)'],
      );
      await eventually(async () => (await temporaries(root)).length === 0, 'the partial to be removed');
      assert.deepEqual(await filesUnder(root, 'raw'), []);
    } finally {
      await running.stop();
    }
  });

  it('discards an upload over the size limit', async () => {
    const root = path.join(work, 'too-large');
    const running = await startServer({ root, maxFileSize: 64 * 1024 });
    try {
      const result = await rawUpload(running.rawPort, randomBytes(1024 * 1024));
      assert.equal(result.reset, true);
      await eventually(() => discarded(running.records).length === 1, 'the discard log line');
      assert.match(String(discarded(running.records)[0]!.reason), /over the server's limit of 65536 bytes/);
      await eventually(async () => (await temporaries(root)).length === 0, 'the partial to be removed');
      assert.deepEqual(await filesUnder(root, 'raw'), []);
      // Exactly at the limit is fine.
      assert.equal((await rawUpload(running.rawPort, randomBytes(64 * 1024))).reset, false);
      assert.deepEqual(await filesUnder(root, 'raw'), ['2.file']);
    } finally {
      await running.stop();
    }
  });

  it('continues numbering after a restart, never reusing a deleted number or overwriting a file', async () => {
    const root = path.join(work, 'restart');
    let running = await startServer({ root });
    await rawUpload(running.rawPort, Buffer.from('one'));
    await rawUpload(running.rawPort, Buffer.from('two'));
    let client = await connect({ port: running.address.port });
    await client.remove('raw/2.file');
    await client.close();
    await running.stop();

    running = await startServer({ root });
    try {
      await rawUpload(running.rawPort, Buffer.from('three'));
      assert.deepEqual(await filesUnder(root, 'raw'), ['1.file', '3.file']);
      // A file someone stored by name at the next number is skipped, not overwritten.
      client = await connect({ port: running.address.port });
      await client.put(Buffer.from('placed by hand'), 'raw/4.file');
      await client.close();
      await rawUpload(running.rawPort, Buffer.from('five'));
      assert.deepEqual(await filesUnder(root, 'raw'), ['1.file', '3.file', '4.file', '5.file']);
      assert.equal(await fs.readFile(path.join(root, 'raw', '4.file'), 'utf8'), 'placed by hand');
      assert.equal(await fs.readFile(path.join(root, 'raw', '5.file'), 'utf8'), 'five');
    } finally {
      await running.stop();
    }

    // Without its counter file (lost by hand), numbering starts above the files present.
    await fs.rm(path.join(root, '.ferry', 'raw-ingest-next'));
    running = await startServer({ root });
    try {
      await rawUpload(running.rawPort, Buffer.from('six'));
      assert.ok((await filesUnder(root, 'raw')).includes('6.file'));
    } finally {
      await running.stop();
    }
  });

  it('works end to end from the CLI: serve --raw-port, nc, ls, get', async () => {
    const root = path.join(work, 'cli');
    const serve = spawnCli(['serve', '--port', '0', '--raw-port', '0', '--root', root]);
    try {
      const main = (await serve.waitForOutput(/"listening on 127\.0\.0\.1:(\d+)/))[1]!;
      const raw = (await serve.waitForOutput(/raw ingest listening on 127\.0\.0\.1:(\d+)/))[1]!;
      const data = randomBytes(500_000);
      const file = path.join(work, 'cli-upload.bin');
      await fs.writeFile(file, data);
      assert.equal(await runWithStdin('nc', ['-N', '127.0.0.1', raw], file), 0);
      const ls = await runCli(['ls', '-s', `127.0.0.1:${main}`]);
      assert.match(ls.stdout, new RegExp(`${digestHex('blake3', data).slice(0, 12)}  raw/1\\.file`));
      const copy = path.join(work, 'cli-copy.bin');
      const get = await runCli(['get', 'raw/1.file', '-o', copy, '-s', `127.0.0.1:${main}`]);
      assert.equal(get.code, 0, get.stderr);
      assert.ok((await fs.readFile(copy)).equals(data));
      assert.match(serve.stdout, /raw upload stored/);
    } finally {
      serve.process.kill('SIGTERM');
      assert.equal((await serve.exited(8000)).code, 0);
    }
  });

  it('refuses a bad --raw-port or --raw-idle-timeout as a usage error', async () => {
    const badPort = await runCli(['serve', '--raw-port', '70000', '--root', path.join(work, 'unused')]);
    assert.equal(badPort.code, 2);
    assert.match(badPort.stderr, /^ferry: invalid --raw-port "70000"/);
    const badIdle = await runCli(['serve', '--port', '0', '--raw-idle-timeout', 'soon', '--root', path.join(work, 'unused')]);
    assert.equal(badIdle.code, 2);
    assert.match(badIdle.stderr, /^ferry: invalid --raw-idle-timeout "soon"/);
  });
});

describe('raw ingest: empty uploads, deadlines and resources', { timeout: 30_000 }, () => {
  let work: string;

  before(async () => {
    work = await tempDir();
  });
  after(async () => {
    await fs.rm(work, { recursive: true, force: true });
  });

  it('stores an empty file at once for a connection that sends no byte (nc -N, socat, a plain socket)', async () => {
    const root = path.join(work, 'empty');
    const running = await startServer({ root });
    try {
      const empty = path.join(work, 'empty.bin');
      await fs.writeFile(empty, '');
      // Killed after 5 s: the 10 s idle timeout must play no part.
      const [ncCode, socatCode, plain] = await Promise.all([
        runWithStdin('nc', ['-N', '127.0.0.1', String(running.rawPort)], empty, 5000),
        runWithStdin('socat', ['-u', 'STDIN', `TCP:127.0.0.1:${running.rawPort}`], empty, 5000),
        rawUpload(running.rawPort, Buffer.alloc(0)),
      ]);
      assert.equal(ncCode, 0, 'nc got its clean close');
      assert.equal(socatCode, 0);
      assert.equal(plain.reset, false, 'the plain socket got a clean close');
      await eventually(async () => (await filesUnder(root, 'raw')).length === 3, 'three empty files', 3000);
      for (const name of await filesUnder(root, 'raw')) assert.equal((await fs.stat(path.join(root, 'raw', name))).size, 0);
      assert.deepEqual(discarded(running.records), []);
    } finally {
      await running.stop();
    }
  });

  it('discards after --raw-idle-timeout of silence, counted on the injected clock', async () => {
    const root = path.join(work, 'manual-idle');
    const clock = new ManualClock();
    const { log, records } = captureLogger();
    // Ten minutes: only the injected clock can make it pass within the test.
    const server = createServer({ host: '127.0.0.1', port: 0, root, logger: log, plugins: [rawIngestPlugin({ port: 0, idleTimeoutMs: 600_000, clock })] });
    await server.listen();
    try {
      const socket = await connectRaw(server.rawAddress!.port);
      const end = ending(socket);
      socket.write('abc');
      await eventually(async () => (await temporarySize(root)) === 3, 'the first bytes on disk');
      clock.advance(599_999);
      socket.write('def'); // a sign of life: the countdown starts again
      await eventually(async () => (await temporarySize(root)) === 6, 'the next bytes on disk');
      clock.advance(599_999);
      assert.deepEqual(discarded(records), [], '1 ms short of 10 min after the last byte: still receiving');
      clock.advance(1);
      assert.equal(await end, 'reset');
      assert.deepEqual(discarded(records).map((r) => r.reason), ['no data for 600 s (raw idle timeout)']);
      await eventually(async () => (await temporaries(root)).length === 0, 'the partial to be removed');
      assert.deepEqual(await filesUnder(root, 'raw'), []);
    } finally {
      await server.close(100);
    }
  });

  it('takes idle timeouts longer than Node timers allow (2^31 − 1 ms) without firing at once', async () => {
    assert.throws(() => rawIngestPlugin({ port: 0, idleTimeoutMs: 0 }), RangeError);
    assert.throws(() => rawIngestPlugin({ port: 0, idleTimeoutMs: Number.NaN }), RangeError);
    const root = path.join(work, 'long-idle');
    // 9999999 s, as `--raw-idle-timeout 9999999` gives: an overflowing timer would fire at once.
    const running = await startServer({ root, rawIdleTimeoutMs: 9_999_999_000 });
    try {
      assert.ok(9_999_999_000 > MAX_TIMER_MS);
      const socket = await connectRaw(running.rawPort);
      const end = ending(socket);
      socket.write('slow ');
      await eventually(async () => (await temporarySize(root)) === 5, 'the first bytes on disk');
      await new Promise((resolve) => setTimeout(resolve, 50)); // real time: the system clock is what overflowed
      socket.end('sender');
      assert.equal(await end, 'closed');
      assert.equal(await fs.readFile(path.join(root, 'raw', '1.file'), 'utf8'), 'slow sender');
      assert.deepEqual(discarded(running.records), []);
    } finally {
      await running.stop();
    }
  });

  it('releases the temporary, descriptors and connection slots on every discard path, and never reuses the numbers', async () => {
    const root = path.join(work, 'release');
    const clock = new ManualClock();
    const store = await Store.open(root, { maxFileSize: 64 * 1024 });
    const limiter = new ConnectionLimiter();
    const { log, records } = captureLogger();
    const server = new RawIngestServer({ store, log, limiter, clock, idleTimeoutMs: 600_000 }); // only the clock can end it
    const { port } = await server.listen('127.0.0.1', 0);
    const baseline = openDescriptors();
    const settled = async (what: string): Promise<void> => {
      await eventually(async () => server.connectionCount === 0 && limiter.count === 0 && (await temporaries(root)).length === 0, what);
    };
    try {
      // 1. The peer resets mid-upload.
      let socket = await connectRaw(port);
      socket.on('error', () => undefined);
      socket.write(randomBytes(10_000));
      await eventually(async () => (await temporarySize(root)) === 10_000, 'bytes on disk');
      socket.resetAndDestroy();
      await settled('the reset upload to be released');

      // 2. Over --max-file-size.
      assert.equal((await rawUpload(port, randomBytes(200_000))).reset, true);
      await settled('the oversized upload to be released');

      // 3. Silent past the idle timeout.
      socket = await connectRaw(port);
      let end = ending(socket);
      socket.write('x');
      await eventually(async () => (await temporarySize(root)) === 1, 'a byte on disk');
      clock.advance(600_000);
      assert.equal(await end, 'reset');
      await settled('the idle upload to be released');

      // 4. The server closes mid-upload: the grace passes on the clock, then the upload is discarded.
      socket = await connectRaw(port);
      end = ending(socket);
      socket.write('y');
      await eventually(async () => (await temporarySize(root)) === 1, 'a byte on disk');
      const closed = server.close(600_000);
      clock.advance(600_000);
      await closed;
      assert.equal(await end, 'reset');
      await settled('the upload cut by the shutdown to be released');
      assert.ok(openDescriptors() <= baseline, `descriptors back to ${baseline} (now ${openDescriptors()})`);
      assert.deepEqual(
        discarded(records).map((r) => r.name),
        ['raw/1.file', 'raw/2.file', 'raw/3.file', 'raw/4.file'],
      );
      assert.deepEqual(await filesUnder(root, 'raw'), []);
    } finally {
      await server.close(0);
    }
    // The four numbers stay used: the next server goes on at 5.
    const again = new RawIngestServer({ store, log, limiter });
    const address = await again.listen('127.0.0.1', 0);
    try {
      assert.equal((await rawUpload(address.port, Buffer.from('five'))).reset, false);
      assert.deepEqual(await filesUnder(root, 'raw'), ['5.file']);
    } finally {
      await again.close(0);
    }
  });
});
