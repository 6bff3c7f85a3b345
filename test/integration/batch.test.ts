import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, type BatchPutResult } from '../../src/index.js';
import { WireErrorCode } from '../../src/errors.js';
import { digestOf } from '../../src/io/digest.js';
import { BatchFlag, encodeMessage, MAX_BATCH_FILES, PROTOCOL_VERSION } from '../../src/protocol/index.js';
import { startFakeServer } from '../helpers/fake-server.js';
import { RawPeer } from '../helpers/raw-peer.js';
import { assertDigest, randomData, startServer, type TestServer } from '../helpers/fixtures.js';

const statuses = (results: BatchPutResult[]): string[] => results.map((r) => (r.status === 'refused' ? `refused ${r.error.code}` : r.status));

/** Issue 12: many small files in one PUT_BATCH (protocol 5), one result per file. */
describe('batched uploads (protocol 5)', () => {
  let server: TestServer;
  before(async () => (server = await startServer()));
  after(() => server.stop());

  it('stores every file of a batch, verified, with a result per file in order', async () => {
    const client = await connect({ port: server.address.port });
    assert.equal(client.version, PROTOCOL_VERSION);
    const files = Array.from({ length: 40 }, (_, i) => ({ name: `many/d${i % 4}/f${i}.bin`, data: randomData(i * 37) }));
    const results = await client.putBatch(files);
    assert.deepEqual(statuses(results), files.map(() => 'stored'));
    for (const [i, result] of results.entries()) {
      assert.ok(result.status === 'stored');
      assert.equal(result.result.name, files[i]!.name);
      assert.equal(result.result.size, files[i]!.data.length);
      assertDigest(result.result, files[i]!.data);
      assert.ok((await fs.readFile(path.join(server.root, files[i]!.name))).equals(files[i]!.data));
    }
    // The listing serves the digests recorded by the batch.
    const listed = await client.list('many/d1');
    assert.equal(listed.length, 10);
    for (const entry of listed) assertDigest(entry, files.find((f) => f.name === entry.name)!.data);
    await client.close();
  });

  it('answers each file on its own: EXISTS, a folder, identical, overwrite, rename, mtime', async () => {
    const client = await connect({ port: server.address.port });
    const data = Buffer.from('first');
    await client.putBatch([{ name: 'own/a.txt', data }, { name: 'own/dir/x', data }]);
    const other = Buffer.from('second');
    const refused = await client.putBatch([
      { name: 'own/a.txt', data: other },
      { name: 'own/dir', data: other },
      { name: 'own/new.txt', data: other },
    ]);
    assert.deepEqual(statuses(refused), ['refused EXISTS', 'refused CONFLICT', 'stored']);
    assert.equal(await fs.readFile(path.join(server.root, 'own/a.txt'), 'utf8'), 'first', 'no clobber');

    const again = await client.putBatch([{ name: 'own/a.txt', data }, { name: 'own/new.txt', data }], { skipIdentical: true });
    assert.deepEqual(statuses(again), ['identical', 'refused EXISTS']);

    const replaced = await client.putBatch([{ name: 'own/new.txt', data }], { overwrite: true });
    assert.deepEqual(statuses(replaced), ['stored']);
    assert.equal(await fs.readFile(path.join(server.root, 'own/new.txt'), 'utf8'), 'first');

    const renamed = await client.putBatch([{ name: 'own/a.txt', data: other }], { rename: true });
    assert.ok(renamed[0]!.status === 'stored');
    assert.equal(renamed[0]!.result.name, 'own/a (1).txt');
    assert.equal(await fs.readFile(path.join(server.root, 'own/a (1).txt'), 'utf8'), 'second');

    const mtimeMs = 1_500_000_000_000;
    const kept = await client.putBatch([{ name: 'own/old.txt', data, mtimeMs }]);
    assert.ok(kept[0]!.status === 'stored');
    assert.equal(kept[0]!.result.mtime.getTime(), mtimeMs);
    assert.equal((await fs.stat(path.join(server.root, 'own/old.txt'))).mtimeMs, mtimeMs);
    await client.close();
  });

  it('a name twice in one batch (new folder or not): the second is refused, renamed or replaces the first, as if sent after it', async () => {
    const client = await connect({ port: server.address.port });
    const one = Buffer.from('one');
    const two = Buffer.from('two!');
    const pair = [
      { name: 'twice-new/a.txt', data: one },
      { name: 'twice-new/a.txt', data: two },
    ];
    // The first batch makes the folder (no look before writing); the second finds the file there.
    assert.deepEqual(statuses(await client.putBatch(pair)), ['stored', 'refused EXISTS']);
    assert.deepEqual(statuses(await client.putBatch(pair)), ['refused EXISTS', 'refused EXISTS']);
    assert.equal(await fs.readFile(path.join(server.root, 'twice-new/a.txt'), 'utf8'), 'one');

    const renamed = await client.putBatch(
      [
        { name: 'twice-r/a.txt', data: one },
        { name: 'twice-r/a.txt', data: two },
        { name: 'twice-r/a (1).txt', data: two },
      ],
      { rename: true },
    );
    assert.deepEqual(
      renamed.map((r) => (r.status === 'stored' ? r.result.name : r.status)),
      ['twice-r/a.txt', 'twice-r/a (1).txt', 'twice-r/a (1) (1).txt'],
    );
    assert.equal(await fs.readFile(path.join(server.root, 'twice-r/a (1).txt'), 'utf8'), 'two!');
    assert.deepEqual((await fs.readdir(path.join(server.root, 'twice-r'))).sort(), ['a (1) (1).txt', 'a (1).txt', 'a.txt']);

    const replaced = await client.putBatch(
      [
        { name: 'twice-o/a.txt', data: one },
        { name: 'twice-o/a.txt', data: two },
      ],
      { overwrite: true },
    );
    assert.deepEqual(statuses(replaced), ['stored', 'stored']);
    assert.equal(await fs.readFile(path.join(server.root, 'twice-o/a.txt'), 'utf8'), 'two!');
    const [listed] = await client.list('twice-o');
    assertDigest(listed!, two);
    await client.close();
  });

  it('holds size limits and the quota per file, and refuses a wrong digest', async () => {
    const small = await startServer({ maxFileSize: 1000, quota: 2500 });
    try {
      const client = await connect({ port: small.address.port });
      const results = await client.putBatch([
        { name: 'q/1', data: randomData(900) },
        { name: 'q/big', data: randomData(1001) },
        { name: 'q/2', data: randomData(900) },
        { name: 'q/3', data: randomData(900) },
      ]);
      assert.deepEqual(statuses(results), ['stored', 'refused TOO_LARGE', 'stored', 'refused QUOTA']);
      assert.equal(small.server.storage.space.stored, 1800);
      assert.equal(small.server.storage.space.reserved, 0, 'the batch released its reservation');
      await client.close();

      // A digest that is not the bytes': INTEGRITY for that file, nothing stored under its name.
      const peer = await RawPeer.connect(small.address.port);
      const good = Buffer.from('good');
      peer.send({
        type: 'PUT_BATCH',
        id: 1,
        flags: 0,
        files: [
          { name: 'v/bad', digest: Buffer.alloc(32, 1), data: Buffer.from('bad') },
          { name: 'v/good', digest: digestOf('sha256', good), data: good },
        ],
      });
      const reply = await peer.waitFor((m) => m.type === 'BATCH_RESULTS');
      assert.ok(reply.type === 'BATCH_RESULTS');
      assert.deepEqual(
        reply.results.map((r) => (r.status === 'refused' ? r.code : r.status)),
        [WireErrorCode.INTEGRITY, 'stored'],
      );
      await assert.rejects(fs.stat(path.join(small.root, 'v/bad')), { code: 'ENOENT' });
      peer.destroy();
    } finally {
      await small.stop();
    }
  });

  it('refuses PUT_BATCH on an older connection, unknown flags, and more than the file cap', async () => {
    const v4 = await RawPeer.connect(server.address.port, { version: 4 });
    v4.send({ type: 'PUT_BATCH', id: 1, flags: 0, files: [] });
    const refusal = await v4.waitFor((m) => m.type === 'ERROR' && m.id === 1);
    assert.ok(refusal.type === 'ERROR');
    assert.equal(refusal.code, WireErrorCode.UNSUPPORTED);
    v4.destroy();

    const peer = await RawPeer.connect(server.address.port);
    peer.send({ type: 'PUT_BATCH', id: 2, flags: 0x80 | BatchFlag.OVERWRITE, files: [] });
    const unknown = await peer.waitFor((m) => m.type === 'ERROR' && m.id === 2);
    assert.ok(unknown.type === 'ERROR');
    assert.equal(unknown.code, WireErrorCode.UNSUPPORTED);
    // count above MAX_BATCH_FILES: a protocol error, the connection closes.
    const payload = Buffer.from([0, (MAX_BATCH_FILES + 1) >> 8, (MAX_BATCH_FILES + 1) & 0xff]);
    const header = Buffer.alloc(9);
    header.writeUInt32BE(payload.length, 0);
    header.writeUInt8(0x18, 4);
    header.writeUInt32BE(3, 5);
    peer.write(Buffer.concat([header, payload]));
    await peer.waitClosed();
  });

  it('a version-5 client asks a version-4 server again with 4, and keeps BLAKE3 and batches apart', async () => {
    const offered: number[] = [];
    const fake = await startFakeServer(() => undefined, {
      onHello: (socket, hello) => {
        if (hello.type !== 'HELLO') return;
        offered.push(hello.version);
        if (hello.version > 4) {
          socket.write(encodeError());
          socket.end();
        } else {
          socket.write(encodeHello(hello.version));
        }
      },
    });
    try {
      const client = await connect({ port: fake.port, timeoutMs: 5000 });
      assert.deepEqual(offered, [PROTOCOL_VERSION, 6, 5, 4]);
      assert.equal(client.version, 4);
      await assert.rejects(client.putBatch([{ name: 'x', data: Buffer.from('x') }]), (e: { code?: string }) => e.code === 'UNSUPPORTED');
      client.destroy();
    } finally {
      await fake.close();
    }
  });
});

function encodeError(): Buffer {
  return encodeMessage({ type: 'ERROR', id: 0, code: WireErrorCode.VERSION, message: 'speaks 1 to 4' });
}

function encodeHello(version: number): Buffer {
  return encodeMessage({ type: 'SERVER_HELLO', id: 0, version, serverName: 'v4', maxFileSize: 1024, flags: 0 });
}
