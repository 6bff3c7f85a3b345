import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { connect, FerryError, type FerryClient } from '../../src/index.js';
import { assertDigest, digestHex, randomData, sha256, sha256File, startServer, tempDir, temporaries, visibleTree, type TestServer } from '../helpers/fixtures.js';

describe('transfers over loopback', () => {
  let server: TestServer;
  let client: FerryClient;
  let local: string;

  before(async () => {
    // 50 clients at once plus this one: above the default per-address limit of 50.
    server = await startServer({ maxPerIp: 100 });
    client = await connect(server.address);
    local = await tempDir();
  });
  after(async () => {
    await client.close();
    await server.stop();
    await fs.rm(local, { recursive: true, force: true });
  });

  for (const size of [0, 1, 65535, 65536, 65537, 10 * 1024 * 1024]) {
    it(`round-trips ${size} random bytes, file to file, verified`, async () => {
      const data = randomData(size);
      const source = path.join(local, `src-${size}`);
      await fs.writeFile(source, data);
      const put = await client.put(source, `rt/${size}.bin`);
      assert.equal(put.size, size);
      assertDigest(put, data);
      const target = path.join(local, `dst-${size}`);
      const got = await client.get(`rt/${size}.bin`, target);
      assertDigest(got, data);
      assert.ok((await fs.readFile(target)).equals(data));
      assert.equal(await sha256File(path.join(server.root, 'rt', `${size}.bin`)), sha256(data));
      await assert.rejects(fs.stat(`${target}.ferry-part`), { code: 'ENOENT' });
    });
  }

  it('uploads from a stream of unknown size (chunked) and downloads into a stream', async () => {
    const data = randomData(3 * 1024 * 1024 + 7);
    const pieces = [data.subarray(0, 100), data.subarray(100, 2_000_000), data.subarray(2_000_000)];
    const put = await client.put(Readable.from(pieces), 'stream.bin');
    assertDigest(put, data);
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    await client.get('stream.bin', sink);
    assert.ok(Buffer.concat(chunks).equals(data));
  });

  it('uploads a stream of declared size', async () => {
    const data = randomData(500_000);
    const put = await client.put(Readable.from([data]), 'sized-stream.bin', { size: data.length });
    assert.equal(put.size, data.length);
    // A stream longer than declared cannot be framed: that connection is lost, others are not.
    const other = await connect(server.address);
    await assert.rejects(other.put(Readable.from([data]), 'liar.bin', { size: 10 }), FerryError);
    other.destroy();
    await assert.rejects(client.stat('liar.bin'), (e: FerryError) => e.code === 'NOT_FOUND');
  });

  it('pipelines many requests on one connection', async () => {
    const c = await connect(server.address);
    const files = Array.from({ length: 40 }, (_, i) => randomData(1000 + i * 997));
    const puts = await Promise.all(files.map((data, i) => c.put(data, `pipe/${i}.bin`)));
    assert.deepEqual(puts.map((p) => p.digest), files.map((data, i) => digestHex(puts[i]!.algorithm, data)));
    const sinks = files.map(() => new PassThrough());
    const collected = sinks.map((s) => {
      const parts: Buffer[] = [];
      s.on('data', (d: Buffer) => parts.push(d));
      return parts;
    });
    await Promise.all(files.map((_, i) => c.get(`pipe/${i}.bin`, sinks[i]!)));
    collected.forEach((parts, i) => assert.ok(Buffer.concat(parts).equals(files[i]!)));
    const listing = await c.list('pipe');
    assert.equal(listing.length, 40);
    await c.close();
  });

  it('keeps the connection usable after refusals', async () => {
    await assert.rejects(client.get('missing.txt', path.join(local, 'x')), (e: FerryError) => e.code === 'NOT_FOUND');
    await assert.rejects(fs.stat(path.join(local, 'x')), { code: 'ENOENT' });
    await client.put(Buffer.from('a'), 'dup.txt');
    await assert.rejects(client.put(Buffer.from('b'), 'dup.txt'), (e: FerryError) => e.code === 'EXISTS');
    // a large put waits for the go-ahead, so EXISTS arrives before any body is sent
    await client.put(randomData(2 * 1024 * 1024), 'big-dup.bin');
    await assert.rejects(client.put(randomData(2 * 1024 * 1024), 'big-dup.bin'), (e: FerryError) => e.code === 'EXISTS');
    await assert.rejects(client.remove('missing.txt'), (e: FerryError) => e.code === 'NOT_FOUND');
    await assert.rejects(client.stat('missing.txt'), (e: FerryError) => e.code === 'NOT_FOUND');
    const entry = await client.stat('dup.txt');
    assertDigest(entry, Buffer.from('a'));
    await client.put(Buffer.from('c'), 'dup.txt', { overwrite: true });
    assertDigest(await client.stat('dup.txt'), Buffer.from('c'));
    await client.remove('dup.txt');
    await assert.rejects(client.stat('dup.txt'), (e: FerryError) => e.code === 'NOT_FOUND');
  });

  it('refuses bad names in the client before anything is sent', async () => {
    await assert.rejects(client.put(Buffer.from('x'), '../escape'), (e: FerryError) => e.code === 'BAD_NAME');
    await assert.rejects(client.get('/etc/passwd', path.join(local, 'p')), (e: FerryError) => e.code === 'BAD_NAME');
  });

  it('serves 50 clients uploading and downloading at once, every hash checked', async () => {
    const datas = Array.from({ length: 50 }, (_, i) => randomData(50_000 + i * 4099));
    await Promise.all(
      datas.map(async (data, i) => {
        const c = await connect(server.address);
        try {
          const put = await c.put(data, `many/${i}.bin`);
          assertDigest(put, data);
          const target = path.join(local, `many-${i}.bin`);
          const got = await c.get(`many/${i}.bin`, target);
          assertDigest(got, data);
          assert.equal(await sha256File(target), sha256(data));
        } finally {
          await c.close();
        }
      }),
    );
    assert.equal((await client.list('many')).length, 50);
  });

  it('reports a refused connection as one CONNECTION error', async () => {
    const probe = await startServer();
    const port = probe.address.port;
    await probe.stop();
    await assert.rejects(connect({ host: '127.0.0.1', port }), (e: FerryError) => e.code === 'CONNECTION' && /refused/.test(e.message));
  });

  it('finishes a transfer in flight when the server stops gracefully', async () => {
    const s = await startServer();
    const c = await connect(s.address);
    const data = randomData(8 * 1024 * 1024);
    let started!: () => void;
    const halfway = new Promise<void>((resolve) => (started = resolve));
    const putting = c.put(data, 'graceful.bin', { onProgress: (p) => p.bytes > 1024 * 1024 && started() });
    await halfway;
    const closing = s.server.close(5000);
    const result = await putting;
    assertDigest(result, data);
    await closing;
    assert.equal(await sha256File(path.join(s.root, 'graceful.bin')), sha256(data));
    await fs.rm(s.root, { recursive: true, force: true });
  });

  it('leaves nothing behind in the temporaries after all this', async () => {
    assert.deepEqual(await temporaries(server.root), []);
    assert.ok(!(await visibleTree(server.root)).some((p) => p.includes('.part')));
  });
});
