import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, type FerryError } from '../../src/index.js';
import { encodeMessage } from '../../src/protocol/index.js';
import { startFakeServer } from '../helpers/fake-server.js';
import { sha256, tempDir } from '../helpers/fixtures.js';

const BODY = Buffer.from('the real bytes');
const SHA = Buffer.from(sha256(BODY), 'hex');

describe('client against a dishonest server', () => {
  let dir: string;
  before(async () => (dir = await tempDir()));
  after(async () => fs.rm(dir, { recursive: true, force: true }));

  async function download(behaviour: Parameters<typeof startFakeServer>[0], timeoutMs = 5000): Promise<{ error: FerryError; target: string }> {
    const fake = await startFakeServer(behaviour);
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

  /**
   * Nothing at the target. A `.ferry-part` stays only for an interrupted download (issue 5:
   * resume), holding at most the announced bytes; a resume verifies it with the server first.
   */
  async function assertNothingWritten(target: string, kept?: number): Promise<void> {
    await assert.rejects(fs.stat(target), { code: 'ENOENT' });
    if (kept === undefined) await assert.rejects(fs.stat(`${target}.ferry-part`), { code: 'ENOENT' });
    else assert.equal((await fs.stat(`${target}.ferry-part`)).size, kept);
  }

  it('refuses bytes that do not match the announced sha256, writing nothing', async () => {
    const { error, target } = await download((m, socket) => {
      socket.write(encodeMessage({ type: 'GET_OK', id: m.id, size: BODY.length, offset: 0, mtimeMs: 0, sha256: Buffer.alloc(32) }));
      socket.write(BODY);
    });
    assert.equal(error.code, 'INTEGRITY');
    await assertNothingWritten(target);
  });

  it('stops at the announced size: extra bytes are a protocol error', async () => {
    const { error, target } = await download((m, socket) => {
      socket.write(encodeMessage({ type: 'GET_OK', id: m.id, size: 4, offset: 0, mtimeMs: 0, sha256: SHA }));
      socket.write(BODY); // 10 bytes more than announced
    });
    assert.equal(error.code, 'PROTOCOL');
    await assertNothingWritten(target, 4); // only the 4 announced bytes were ever written
  });

  it('fails within its timeout when the server stalls mid-body', async () => {
    const started = Date.now();
    const { error, target } = await download((m, socket) => {
      socket.write(encodeMessage({ type: 'GET_OK', id: m.id, size: 1000, offset: 0, mtimeMs: 0, sha256: SHA }));
      socket.write(BODY);
    }, 400);
    assert.equal(error.code, 'TIMEOUT');
    assert.ok(Date.now() - started < 3000);
    await assertNothingWritten(target, BODY.length);
  });

  it('fails cleanly when the server closes mid-body', async () => {
    const { error, target } = await download((m, socket) => {
      socket.write(encodeMessage({ type: 'GET_OK', id: m.id, size: 1000, offset: 0, mtimeMs: 0, sha256: SHA }));
      socket.end(BODY);
    });
    assert.equal(error.code, 'CLOSED');
    await assertNothingWritten(target, BODY.length);
  });

  it('refuses a listing that names ../ or carries terminal escapes', async () => {
    for (const name of ['../x', 'evil\u001b[2J']) {
      const fake = await startFakeServer((m, socket) => {
        socket.write(encodeMessage({ type: 'ENTRIES', id: m.id, more: false, entries: [{ name, kind: 'file', size: 1, mtimeMs: 0, sha256: SHA }] }));
      });
      const client = await connect({ host: '127.0.0.1', port: fake.port });
      await assert.rejects(client.list(), (e: FerryError) => e.code === 'PROTOCOL' && !e.message.includes('\u001b'));
      client.destroy();
      await fake.close();
    }
  });

  it('refuses a PUT_OK whose digest differs from what was sent', async () => {
    const fake = await startFakeServer((m, socket) => {
      if (m.type === 'PUT_END') {
        socket.write(encodeMessage({ type: 'PUT_OK', id: m.id, entry: { name: 'x', kind: 'file', size: BODY.length, mtimeMs: 0, sha256: Buffer.alloc(32) } }));
      }
    });
    const client = await connect({ host: '127.0.0.1', port: fake.port });
    await assert.rejects(client.put(BODY, 'x'), (e: FerryError) => e.code === 'INTEGRITY');
    client.destroy();
    await fake.close();
  });
});
