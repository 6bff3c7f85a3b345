import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { connect, WireErrorCode, type FerryError } from '../../src/index.js';
import { encodeMessage, type WireEntry } from '../../src/protocol/index.js';
import { runCli } from '../helpers/cli.js';
import { startFakeServer } from '../helpers/fake-server.js';
import { makeSentinel, sha256, tempDir, treeOf, type Sentinel } from '../helpers/fixtures.js';

/**
 * A fake server against the client (issue 4): the client writes nothing outside its target,
 * stops reading at the announced size, and fails with one line within its timeout.
 */

const BODY = Buffer.from('the real bytes');
const SHA = Buffer.from(sha256(BODY), 'hex');
const ESC = '\u001b';
const entry = (name: string): WireEntry => ({ name, kind: 'file', size: 1, mtimeMs: 0, digest: SHA });

describe('client against a malicious server', () => {
  let dir: string;
  let sentinel: Sentinel;
  before(async () => {
    dir = await tempDir();
    sentinel = await makeSentinel();
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
    await sentinel.cleanup();
  });
  // Whatever the server did: nothing outside the download folder, nothing but downloads in it.
  afterEach(async () => {
    await sentinel.assertUntouched();
    assert.deepEqual((await treeOf(dir)).filter((p) => !p.startsWith('out-')), []);
  });

  async function download(behaviour: Parameters<typeof startFakeServer>[0], timeoutMs = 5000): Promise<{ error: FerryError; target: string }> {
    // Only GET is answered dishonestly; anything else the client asks (a resume probe) is refused.
    const fake = await startFakeServer((m, socket, peer) => {
      if (m.type === 'GET') behaviour(m, socket, peer);
      else socket.write(encodeMessage({ type: 'ERROR', id: m.id, code: WireErrorCode.NOT_FOUND, message: 'no' }));
    });
    const client = await connect({ host: '127.0.0.1', port: fake.port, timeoutMs });
    const target = path.join(dir, `out-${Math.random().toString(36).slice(2)}`);
    try {
      const error = await client.get('file.bin', target).then(
        () => assert.fail('download should have failed'),
        (e: FerryError) => e,
      );
      return { error, target };
    } finally {
      client.destroy();
      await fake.close();
    }
  }

  /** The target never appears; a partial kept for a resume holds at most the announced bytes. */
  async function assertNothingWritten(target: string, announced = 0): Promise<void> {
    await assert.rejects(fs.stat(target), { code: 'ENOENT' });
    const partial = await fs.stat(`${target}.ferry-part`).catch(() => undefined);
    assert.ok(partial === undefined || partial.size <= announced, `partial of ${partial?.size} bytes`);
  }

  const oneLine = (e: FerryError): boolean => !e.message.includes('\n') && !e.message.includes(ESC);

  it('refuses bytes that do not match the announced sha256, writing nothing', async () => {
    const { error, target } = await download((m, socket) => {
      socket.write(encodeMessage({ type: 'GET_OK', id: m.id, size: BODY.length, offset: 0, mtimeMs: 0, digest: Buffer.alloc(32) }));
      socket.write(BODY);
    });
    assert.equal(error.code, 'INTEGRITY');
    await assertNothingWritten(target);
  });

  it('stops at the announced size: extra bytes are a protocol error', async () => {
    const { error, target } = await download((m, socket) => {
      socket.write(encodeMessage({ type: 'GET_OK', id: m.id, size: 4, offset: 0, mtimeMs: 0, digest: SHA }));
      socket.write(BODY); // 10 bytes more than announced
    });
    assert.ok(['INTEGRITY', 'PROTOCOL'].includes(error.code), error.code);
    await assertNothingWritten(target, 4);
  });

  it('stops at the announced size of an endless body', async () => {
    let timer: NodeJS.Timeout | undefined;
    let sent = 0;
    const { error, target } = await download((m, socket) => {
      socket.write(encodeMessage({ type: 'GET_OK', id: m.id, size: 1000, offset: 0, mtimeMs: 0, digest: SHA }));
      const chunk = Buffer.alloc(64 * 1024, 0x41);
      timer = setInterval(() => {
        if (socket.destroyed) return clearInterval(timer);
        socket.write(chunk);
        sent += chunk.length;
      }, 5);
    });
    clearInterval(timer);
    assert.ok(['INTEGRITY', 'PROTOCOL'].includes(error.code), error.code);
    assert.ok(oneLine(error));
    assert.ok(sent < 50 * 1024 * 1024);
    await assertNothingWritten(target, 1000);
  });

  it('fails within its timeout when the server stalls mid-body', async () => {
    const started = Date.now();
    const { error, target } = await download((m, socket) => {
      socket.write(encodeMessage({ type: 'GET_OK', id: m.id, size: 1000, offset: 0, mtimeMs: 0, digest: SHA }));
      socket.write(BODY);
    }, 400);
    assert.equal(error.code, 'TIMEOUT');
    assert.ok(Date.now() - started < 3000);
    await assertNothingWritten(target, 1000);
  });

  it('fails cleanly when the server closes mid-body', async () => {
    const { error, target } = await download((m, socket) => {
      socket.write(encodeMessage({ type: 'GET_OK', id: m.id, size: 1000, offset: 0, mtimeMs: 0, digest: SHA }));
      socket.end(BODY);
    });
    assert.equal(error.code, 'CLOSED');
    await assertNothingWritten(target, 1000);
  });

  it('keeps its absolute connect deadline against a server that trickles its SERVER_HELLO', async () => {
    const hello = encodeMessage({ type: 'SERVER_HELLO', id: 0, version: 1, serverName: 'slow', maxFileSize: 1, flags: 0 });
    let timer: NodeJS.Timeout | undefined;
    const fake = await startFakeServer(() => undefined, {
      onHello: (socket) => {
        let i = 0;
        timer = setInterval(() => (i < hello.length - 1 && !socket.destroyed ? socket.write(hello.subarray(i, ++i)) : clearInterval(timer)), 40);
      },
    });
    const started = Date.now();
    await assert.rejects(connect({ host: '127.0.0.1', port: fake.port, timeoutMs: 400 }), (e: FerryError) => e.code === 'TIMEOUT' && oneLine(e));
    assert.ok(Date.now() - started < 1500);
    clearInterval(timer);
    await fake.close();
  });

  it('refuses a server that answers with a protocol version it was not offered', async () => {
    const fake = await startFakeServer(() => undefined, { hello: { version: 99 } });
    await assert.rejects(connect({ host: '127.0.0.1', port: fake.port }), (e: FerryError) => e.code === 'PROTOCOL');
    await fake.close();
  });

  for (const name of ['../x', '../../etc/passwd', '/etc/passwd', 'a/../../b', 'C:\\x', 'evil\u001b[2J', 'e\u0301', '.ferry/x', '']) {
    it(`refuses the name ${JSON.stringify(name)} in a listing, a STAT reply and a PUT_OK`, async () => {
      const fake = await startFakeServer((m, socket) => {
        if (m.type === 'LIST') socket.write(encodeMessage({ type: 'ENTRIES', id: m.id, more: false, entries: [entry('fine.txt'), entry(name)] }));
        if (m.type === 'STAT') socket.write(encodeMessage({ type: 'ENTRY', id: m.id, entry: entry(name) }));
        if (m.type === 'PUT_END') socket.write(encodeMessage({ type: 'PUT_OK', id: m.id, entry: { ...entry(name), size: BODY.length } }));
      });
      for (const call of [
        (c: Awaited<ReturnType<typeof connect>>) => c.list(),
        (c: Awaited<ReturnType<typeof connect>>) => c.stat('x'),
        (c: Awaited<ReturnType<typeof connect>>) => c.put(BODY, 'x'),
      ]) {
        const client = await connect({ host: '127.0.0.1', port: fake.port });
        await assert.rejects(call(client), (e: FerryError) => e.code === 'PROTOCOL' && oneLine(e));
        client.destroy();
      }
      await fake.close();
    });
  }

  it('escapes terminal sequences in a server\'s error text, and the CLI prints one line', async () => {
    const fake = await startFakeServer((m, socket) => {
      socket.write(encodeMessage({ type: 'ERROR', id: m.id, code: WireErrorCode.NOT_FOUND, message: `gone${ESC}[2J${ESC}]0;pwned\u0007\nsecond line` }));
    });
    const client = await connect({ host: '127.0.0.1', port: fake.port });
    await assert.rejects(client.stat('x'), (e: FerryError) => e.code === 'NOT_FOUND' && oneLine(e) && e.message.includes('\\u001b'));
    client.destroy();
    const cli = await runCli(['stat', 'x', '-s', `127.0.0.1:${fake.port}`]);
    assert.equal(cli.code, 1);
    assert.ok(!cli.stderr.includes(ESC) && cli.stderr.trimEnd().split('\n').length === 1, JSON.stringify(cli.stderr));
    const ls = await runCli(['ls', '-s', `127.0.0.1:${fake.port}`]);
    assert.ok(!ls.stderr.includes(ESC) && !ls.stdout.includes(ESC));
    await fake.close();
  });

  it('refuses a listing of 100 MB with one line, without holding it all', async () => {
    const names = Array.from({ length: 300 }, (_, i) => `${'n'.repeat(100)}/${String(i).padStart(50, '0')}`);
    const frameBytes = encodeMessage({ type: 'ENTRIES', id: 1, more: true, entries: names.map(entry) }).length;
    let written = 0;
    const fake = await startFakeServer((m, socket) => {
      if (m.type !== 'LIST') return;
      const batch = encodeMessage({ type: 'ENTRIES', id: m.id, more: true, entries: names.map(entry) });
      const pump = (): void => {
        while (written < 100 * 1024 * 1024 && !socket.destroyed) {
          written += batch.length;
          if (!socket.write(batch)) return void socket.once('drain', pump);
        }
        if (!socket.destroyed) socket.write(encodeMessage({ type: 'ENTRIES', id: m.id, more: false, entries: [] }));
      };
      pump();
    });
    const client = await connect({ host: '127.0.0.1', port: fake.port, timeoutMs: 10_000 });
    await assert.rejects(client.list(), (e: FerryError) => e.code === 'PROTOCOL' && /listing over 64 MiB/.test(e.message) && oneLine(e));
    client.destroy();
    await fake.close();
    assert.ok(frameBytes > 60_000 && written < 100 * 1024 * 1024, 'the client stopped reading before the end');
  });

  it('refuses a PUT_OK whose digest differs from what was sent', async () => {
    const fake = await startFakeServer((m, socket) => {
      if (m.type === 'PUT_END') {
        socket.write(encodeMessage({ type: 'PUT_OK', id: m.id, entry: { name: 'x', kind: 'file', size: BODY.length, mtimeMs: 0, digest: Buffer.alloc(32) } }));
      }
    });
    const client = await connect({ host: '127.0.0.1', port: fake.port });
    await assert.rejects(client.put(BODY, 'x'), (e: FerryError) => e.code === 'INTEGRITY');
    client.destroy();
    await fake.close();
  });
});
