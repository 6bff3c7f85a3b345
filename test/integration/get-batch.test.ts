import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, type BatchGetResult } from '../../src/index.js';
import { WireErrorCode } from '../../src/errors.js';
import { encodeMessage, MAX_GET_BATCH_FILE, MAX_GET_BATCH_NAMES, MessageType, PROTOCOL_VERSION } from '../../src/protocol/index.js';
import { startFakeServer } from '../helpers/fake-server.js';
import { RawPeer } from '../helpers/raw-peer.js';
import { assertDigest, randomData, startServer, type TestServer } from '../helpers/fixtures.js';

const statuses = (results: BatchGetResult[]): string[] => results.map((r) => (r.status === 'refused' ? `refused ${r.error.code}` : r.status));

/** Issue 12: many small files in one GET_BATCH (protocol 6), one item per file in order. */
describe('batched downloads (protocol 6)', () => {
  let server: TestServer;
  before(async () => (server = await startServer()));
  after(() => server.stop());

  it('sends every file of a batch, verified, in order, over several frames', async () => {
    const client = await connect({ port: server.address.port });
    assert.equal(client.version, PROTOCOL_VERSION);
    // 40 files of up to 40 KiB: about 800 KiB, so the reply takes many frames.
    const files = Array.from({ length: 40 }, (_, i) => ({ name: `gb/d${i % 4}/f${i}.bin`, data: randomData(i * 1013) }));
    for (const file of files) await client.put(file.data, file.name);
    const results = await client.getBatch(files.map((f) => f.name));
    assert.deepEqual(statuses(results), files.map(() => 'file'));
    for (const [i, result] of results.entries()) {
      assert.ok(result.status === 'file');
      assert.ok(result.data.equals(files[i]!.data));
      assert.equal(result.result.name, files[i]!.name);
      assert.equal(result.result.size, files[i]!.data.length);
      assertDigest(result.result, files[i]!.data);
    }
    await client.close();
  });

  it('answers each file on its own: large, missing, a folder, a bad name, a corrupt file', async () => {
    const client = await connect({ port: server.address.port });
    const small = randomData(MAX_GET_BATCH_FILE);
    const large = randomData(MAX_GET_BATCH_FILE + 1);
    const rotten = randomData(2000);
    await client.put(small, 'st/small');
    await client.put(large, 'st/large');
    await client.put(Buffer.from('x'), 'st/dir/x');
    // Whole seconds: utimes takes seconds as a double, so this mtime can be put back exactly.
    const mtime = new Date(1_700_000_000_000);
    await client.put(rotten, 'st/rotten', { mtimeMs: mtime.getTime() });
    // Bit rot: the bytes change in place, the inode, size and mtime (what the record names) do not.
    const file = path.join(server.root, 'st/rotten');
    const handle = await fs.open(file, 'r+');
    await handle.write(Buffer.from('ROT'), 0, 3, 100);
    await handle.close();
    await fs.utimes(file, mtime, mtime);

    const results = await client.getBatch(['st/small', 'st/large', 'st/missing', 'st/dir', 'st/rotten', 'st/small']);
    assert.deepEqual(statuses(results), ['file', 'large', 'refused NOT_FOUND', 'refused CONFLICT', 'refused INTEGRITY', 'file']);
    assert.ok(results[0]!.status === 'file' && results[0]!.data.equals(small));
    assert.ok(results[1]!.status === 'large' && results[1]!.size === large.length);
    assert.ok(results[2]!.status === 'refused');
    assert.equal(results[2]!.error.message, 'no file named "st/missing"');
    // A bad name is refused on its own, before anything is sent: the other names still come.
    const mixed = await client.getBatch(['st/small', '../up', '/etc/passwd', 'st/small']);
    assert.deepEqual(statuses(mixed), ['file', 'refused BAD_NAME', 'refused BAD_NAME', 'file']);
    assert.ok(mixed[1]!.status === 'refused' && mixed[1]!.name === '../up' && mixed[1]!.error.message.includes('"../up"'));
    assert.ok(mixed[2]!.status === 'refused' && mixed[2]!.error.message.includes('"/etc/passwd"'));
    assert.ok(mixed[3]!.status === 'file' && mixed[3]!.data.equals(small));
    assert.deepEqual(statuses(await client.getBatch(['../up'])), ['refused BAD_NAME']);
    await client.close();
  });

  it('serves files placed by hand (no digest record yet) and names across folders, a file in the way', async () => {
    await fs.mkdir(path.join(server.root, 'hand/sub'), { recursive: true });
    await fs.writeFile(path.join(server.root, 'hand/one'), 'one');
    await fs.writeFile(path.join(server.root, 'hand/sub/two'), 'two');
    const client = await connect({ port: server.address.port });
    const results = await client.getBatch(['hand/one', 'hand/sub/two', 'hand/one/under-a-file', 'top-missing', 'hand/sub/two']);
    // (a file on the path is CONFLICT, as for a GET)
    assert.deepEqual(statuses(results), ['file', 'file', 'refused CONFLICT', 'refused NOT_FOUND', 'file']);
    assert.ok(results[0]!.status === 'file' && results[0]!.data.toString() === 'one');
    assert.ok(results[1]!.status === 'file' && results[1]!.data.toString() === 'two');
    // Its digest is recorded now, as a GET would have done: the listing serves the same one.
    const [listed] = await client.list('hand/one');
    assert.ok(results[0]!.status === 'file');
    assert.equal(listed!.digest, results[0]!.result.digest);
    await client.close();
  });

  it('refuses GET_BATCH on an older connection and closes on more than the name cap; the server stays healthy', async () => {
    const v5 = await RawPeer.connect(server.address.port, { version: 5 });
    v5.send({ type: 'GET_BATCH', id: 1, names: ['a'] });
    const refusal = await v5.waitFor((m) => m.type === 'ERROR' && m.id === 1);
    assert.ok(refusal.type === 'ERROR');
    assert.equal(refusal.code, WireErrorCode.UNSUPPORTED);
    v5.destroy();

    const peer = await RawPeer.connect(server.address.port);
    // A bad name from a client that skips its own checks is that file's refusal.
    peer.send({ type: 'GET_BATCH', id: 2, names: ['../etc/passwd', '.ferry/meta', 'nothing'] });
    const reply = await peer.waitFor((m) => m.type === 'BATCH_FILES' && m.id === 2);
    assert.ok(reply.type === 'BATCH_FILES');
    assert.deepEqual(
      reply.items.map((item) => (item.status === 'refused' ? item.code : item.status)),
      [WireErrorCode.BAD_NAME, WireErrorCode.BAD_NAME, WireErrorCode.NOT_FOUND],
    );
    // count above MAX_GET_BATCH_NAMES: a protocol error, the connection closes.
    const payload = Buffer.from([(MAX_GET_BATCH_NAMES + 1) >> 8, (MAX_GET_BATCH_NAMES + 1) & 0xff]);
    const header = Buffer.alloc(9);
    header.writeUInt32BE(payload.length, 0);
    header.writeUInt8(MessageType.GET_BATCH, 4);
    header.writeUInt32BE(3, 5);
    peer.write(Buffer.concat([header, payload]));
    await peer.waitClosed();
    assert.equal(peer.messages.some((m) => m.type === 'ERROR' && m.id === 0 && m.code === WireErrorCode.PROTOCOL), true);

    const client = await connect({ port: server.address.port });
    await client.put(Buffer.from('still here'), 'healthy');
    const [afterwards] = await client.getBatch(['healthy']);
    assert.ok(afterwards?.status === 'file' && afterwards.data.toString() === 'still here');
    await client.close();
  });

  it('a read-only token may get a batch', async () => {
    const dir = await fs.mkdtemp(path.join(server.root, '..', 'ferry-tokens-'));
    const tokensFile = path.join(dir, 'tokens');
    const reader = 'r'.repeat(20);
    const writer = 'w'.repeat(20);
    await fs.writeFile(tokensFile, `${reader} read\n${writer} write\n`);
    const guarded = await startServer({ tokens: tokensFile });
    try {
      const writing = await connect({ port: guarded.address.port, token: writer });
      await writing.put(Buffer.from('secret'), 's.txt');
      await writing.close();
      const anonymous = await RawPeer.connect(guarded.address.port);
      anonymous.send({ type: 'GET_BATCH', id: 1, names: ['s.txt'] });
      const refused = await anonymous.waitFor((m) => m.id === 1);
      assert.ok(refused.type === 'ERROR' && refused.code === WireErrorCode.AUTH_REQUIRED);
      anonymous.destroy();
      const reading = await connect({ port: guarded.address.port, token: reader });
      const [got] = await reading.getBatch(['s.txt']);
      assert.ok(got?.status === 'file' && got.data.toString() === 'secret');
      await reading.close();
    } finally {
      await guarded.stop();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('a version-6 client asks a version-5 server again with 5, where getBatch is UNSUPPORTED', async () => {
    const offered: number[] = [];
    const fake = await startFakeServer(() => undefined, {
      onHello: (socket, hello) => {
        if (hello.type !== 'HELLO') return;
        offered.push(hello.version);
        if (hello.version > 5) {
          socket.write(encodeMessage({ type: 'ERROR', id: 0, code: WireErrorCode.VERSION, message: 'speaks 1 to 5' }));
          socket.end();
        } else {
          socket.write(encodeMessage({ type: 'SERVER_HELLO', id: 0, version: hello.version, serverName: 'v5', maxFileSize: 1024, flags: 0 }));
        }
      },
    });
    try {
      const client = await connect({ port: fake.port, timeoutMs: 5000 });
      assert.deepEqual(offered, [PROTOCOL_VERSION, 6, 5]);
      assert.equal(client.version, 5);
      await assert.rejects(client.getBatch(['x']), (e: { code?: string }) => e.code === 'UNSUPPORTED');
      client.destroy();
    } finally {
      await fake.close();
    }
  });
});
