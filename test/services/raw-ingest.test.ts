import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from '../../src/index.js';
import {
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

      const client = await connect({ port: running.address.port });
      try {
        await eventually(async () => (await client.list('raw')).length === 22, 'all 22 files to be stored');
        const entries = await client.list('raw');
        const numbers = entries.map((e) => Number(/^raw\/(\d+)\.file$/.exec(e.name)?.[1])).sort((a, b) => a - b);
        assert.deepEqual(numbers, Array.from({ length: 22 }, (_, i) => i + 1));
        const sent = new Set([viaNc, viaSocat, ...sockets].map(sha256));
        const stored = new Set(entries.map((e) => e.sha256));
        assert.deepEqual(stored, sent, 'every upload stored whole, each under its own number');
        // The recorded sha256 is what a download verifies against.
        const ncEntry = entries.find((e) => e.sha256 === sha256(viaNc))!;
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
      assert.match(ls.stdout, new RegExp(`${sha256(data).slice(0, 12)}  raw/1\\.file`));
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
