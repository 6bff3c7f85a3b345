import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, type FerryError } from '../../src/index.js';
import { digestOf } from '../../src/io/digest.js';
import { encodeMessage, frame, MAX_GET_BATCH_FILE, MessageType, type BatchItem, type Message } from '../../src/protocol/index.js';
import { runCli } from '../helpers/cli.js';
import { startFakeServer } from '../helpers/fake-server.js';
import { tempDir, treeOf } from '../helpers/fixtures.js';

const GOOD = Buffer.from('the real bytes');
const good = (): BatchItem => ({ status: 'file', mtimeMs: 0, digest: digestOf('sha256', GOOD), data: GOOD });

/**
 * A hostile server answering GET_BATCH (issue 12): a file whose bytes do not match the digest
 * sent with them is that file's INTEGRITY failure and is never written; a reply that breaks the
 * framing (more files than asked, endless empty frames, an oversized file) fails the request
 * as a protocol error, and nothing is written.
 */
describe('client against a hostile GET_BATCH server', () => {
  let dir: string;
  before(async () => (dir = await tempDir()));
  after(() => fs.rm(dir, { recursive: true, force: true }));

  async function batchAgainst(reply: (m: Extract<Message, { type: 'GET_BATCH' }>) => Buffer): Promise<{ port: number; close: () => Promise<void> }> {
    return startFakeServer((m, socket) => {
      if (m.type === 'GET_BATCH') socket.write(reply(m));
    });
  }

  it('a wrong digest fails that file only, with INTEGRITY', async () => {
    const fake = await batchAgainst((m) =>
      encodeMessage({ type: 'BATCH_FILES', id: m.id, more: false, items: [good(), { status: 'file', mtimeMs: 0, digest: digestOf('sha256', GOOD), data: Buffer.from('other bytes!!!') }] }),
    );
    try {
      const client = await connect({ port: fake.port, timeoutMs: 5000, digest: 'sha256' });
      const [first, second] = await client.getBatch(['a', 'b']);
      assert.equal(first?.status, 'file');
      assert.ok(second?.status === 'refused');
      assert.equal(second.error.code, 'INTEGRITY');
      client.destroy();
    } finally {
      await fake.close();
    }
  });

  type Reply = (m: { id: number; names: string[] }) => Buffer;
  const goods = (count: number): BatchItem[] => Array.from({ length: count }, good);
  const replies: [string, Reply][] = [
    ['more files than asked', (m) => encodeMessage({ type: 'BATCH_FILES', id: m.id, more: false, items: goods(m.names.length + 1) })],
    ['fewer files than asked', (m) => encodeMessage({ type: 'BATCH_FILES', id: m.id, more: false, items: goods(m.names.length - 1) })],
    ['a small file called too large for a batch', (m) => encodeMessage({ type: 'BATCH_FILES', id: m.id, more: false, items: m.names.map(() => ({ status: 'large' as const, size: 10 })) })],
    ['an empty frame that is not the last', (m) => encodeMessage({ type: 'BATCH_FILES', id: m.id, more: true, items: [] })],
    [
      'a file over the batch limit',
      (m) => {
        const payload = Buffer.alloc(3 + 1 + 4 + 8 + 32);
        payload.writeUInt16BE(1, 1);
        payload.writeUInt32BE(MAX_GET_BATCH_FILE + 1, 4);
        return frame(MessageType.BATCH_FILES, m.id, payload);
      },
    ],
    [
      'bytes after the last item',
      (m) => {
        const honest = encodeMessage({ type: 'BATCH_FILES', id: m.id, more: false, items: goods(m.names.length) });
        return frame(MessageType.BATCH_FILES, m.id, Buffer.concat([honest.subarray(9), Buffer.from('extra')]));
      },
    ],
  ];
  for (const [what, reply] of replies) {
    it(`${what}: a protocol error, nothing written by get`, async () => {
      const fake = await batchAgainst(reply);
      try {
        const client = await connect({ port: fake.port, timeoutMs: 5000, digest: 'sha256' });
        const error = await client.getBatch(['a', 'b']).then(
          () => assert.fail('the batch should have failed'),
          (e: FerryError) => e,
        );
        assert.equal(error.code, 'PROTOCOL');
        client.destroy();
        // The CLI: `get a b` (many names) goes by batch; neither file appears.
        const out = path.join(dir, `out-${Math.random().toString(36).slice(2)}`);
        await fs.mkdir(out);
        const result = await runCli(['get', 'a', 'b', '-o', out, '-s', `127.0.0.1:${fake.port}`, '--digest', 'sha256', '--quiet']);
        assert.equal(result.code, 1, result.stderr);
        assert.match(result.stderr, /2 of 2 files failed/);
        assert.deepEqual(await treeOf(out), []);
      } finally {
        await fake.close();
      }
    });
  }

  it('the CLI writes the good file and not the corrupt one', async () => {
    const fake = await batchAgainst((m) =>
      encodeMessage({ type: 'BATCH_FILES', id: m.id, more: false, items: [good(), { status: 'file', mtimeMs: 0, digest: Buffer.alloc(32), data: GOOD }] }),
    );
    try {
      const out = path.join(dir, 'mixed');
      await fs.mkdir(out);
      const result = await runCli(['get', 'a', 'b', '-o', out, '-s', `127.0.0.1:${fake.port}`, '--digest', 'sha256', '--quiet']);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /^ferry: b: sha256 of the 14 bytes received does not match the server's: the download is corrupt$/m);
      assert.deepEqual(await treeOf(out), ['a']);
      assert.ok((await fs.readFile(path.join(out, 'a'))).equals(GOOD));
    } finally {
      await fake.close();
    }
  });
});
