import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, createServer } from '../../src/index.js';
import { PutFlag } from '../../src/protocol/index.js';
import { assertDigest, eventually, randomData, startServer, tempDir, temporaries, type TestServer } from '../helpers/fixtures.js';
import { RawPeer } from '../helpers/raw-peer.js';
import { pino } from 'pino';

const SIZE = 3 * 1024 * 1024 + 11;

/** Starts an upload by hand and cuts the connection after exactly `sent` body bytes. */
/** Sends `sent` bytes of an upload, then drops the connection; waits until the server keeps them. */
async function interruptedUpload(port: number, name: string, data: Buffer, sent: number, root?: string): Promise<void> {
  const kept = root === undefined ? 0 : await partialCount(root);
  const peer = await RawPeer.connect(port);
  peer.send({ type: 'PUT', id: 1, name, flags: PutFlag.AWAIT_READY, size: data.length });
  await peer.waitFor((m) => m.type === 'PUT_READY');
  if (sent > 0) peer.write(data.subarray(0, sent));
  await new Promise<void>((resolve) => peer.socket.end(resolve));
  await peer.waitClosed();
  if (root !== undefined && sent > 0) await eventually(async () => (await partialCount(root)) > kept, 5000, 'the partial to be kept');
}

async function partialCount(root: string): Promise<number> {
  return (await fs.readdir(path.join(root, '.ferry', 'partial'))).length;
}

describe('resume', () => {
  let server: TestServer;
  let local: string;
  let data: Buffer;
  let file: string;

  before(async () => {
    server = await startServer();
    local = await tempDir();
    data = randomData(SIZE);
    file = path.join(local, 'big.bin');
    await fs.writeFile(file, data);
  });
  after(async () => {
    await server.stop();
    await fs.rm(local, { recursive: true, force: true });
  });

  for (const cut of [0, 1, 1024 * 1024, SIZE - 1]) {
    it(`continues an upload cut after ${cut} bytes, sending only the rest`, async () => {
      const name = `up-${cut}.bin`;
      await interruptedUpload(server.address.port, name, data, cut, server.root);
      await eventually(async () => (await temporaries(server.root)).length === 0, 3000, 'the partial to be kept');
      const client = await connect(server.address);
      let firstProgress: number | undefined;
      const result = await client.put(file, name, { onProgress: (p) => (firstProgress ??= p.bytes) });
      await client.close();
      assert.equal(result.resumedFrom, cut);
      assert.equal(firstProgress, cut);
      assertDigest(result, data);
      assert.ok((await fs.readFile(path.join(server.root, name))).equals(data));
    });
  }

  it('starts over when the local file no longer matches the kept prefix', async () => {
    await interruptedUpload(server.address.port, 'changed.bin', data, 2 * 1024 * 1024, server.root);
    const changed = Buffer.from(data);
    changed[10] = changed[10]! ^ 0xff;
    const changedFile = path.join(local, 'changed.bin');
    await fs.writeFile(changedFile, changed);
    const client = await connect(server.address);
    const result = await client.put(changedFile, 'changed.bin');
    await client.close();
    assert.equal(result.resumedFrom, 0);
    assert.ok((await fs.readFile(path.join(server.root, 'changed.bin'))).equals(changed));
  });

  it('starts over with resume: false even when a partial is kept', async () => {
    await interruptedUpload(server.address.port, 'fresh.bin', data, 1000, server.root);
    const client = await connect(server.address);
    const result = await client.put(file, 'fresh.bin', { resume: false });
    await client.close();
    assert.equal(result.resumedFrom, 0);
    assert.equal(await partialCount(server.root), 0);
  });

  it('keeps partials across a server restart, and expires them after the TTL', async () => {
    const root = await tempDir();
    const first = createServer({ root, port: 0, logger: pino({ level: 'silent' }) });
    const address = await first.listen();
    await interruptedUpload(address.port, 'restart.bin', data, 123_456);
    await first.close(100);
    const second = createServer({ root, port: 0, logger: pino({ level: 'silent' }) });
    const client = await connect(await second.listen());
    const result = await client.put(file, 'restart.bin');
    await client.close();
    assert.equal(result.resumedFrom, 123_456);
    await interruptedUpload(second.address.port, 'expire.bin', data, 5000);
    await second.close(100);
    const third = createServer({ root, port: 0, logger: pino({ level: 'silent' }), partialTtlMs: 1 });
    await new Promise((r) => setTimeout(r, 20));
    await third.listen();
    assert.equal(await partialCount(root), 0);
    await third.close(100);
    await fs.rm(root, { recursive: true, force: true });
  });

  for (const held of [1, 1024 * 1024, SIZE - 1]) {
    it(`continues a download from a ${held}-byte .ferry-part after checking it`, async () => {
      const name = `down-${held}.bin`;
      const client = await connect(server.address);
      await client.put(data, name);
      const target = path.join(local, name);
      await fs.writeFile(`${target}.ferry-part`, data.subarray(0, held));
      const result = await client.get(name, target);
      await client.close();
      assert.equal(result.resumedFrom, held);
      assert.ok((await fs.readFile(target)).equals(data));
      await assert.rejects(fs.stat(`${target}.ferry-part`), { code: 'ENOENT' });
    });
  }

  it('starts a download over when the .ferry-part differs from the server', async () => {
    const client = await connect(server.address);
    await client.put(data, 'down-bad.bin');
    const target = path.join(local, 'down-bad.bin');
    await fs.writeFile(`${target}.ferry-part`, randomData(500_000));
    const result = await client.get('down-bad.bin', target);
    assert.equal(result.resumedFrom, 0);
    assert.ok((await fs.readFile(target)).equals(data));
    // a .ferry-part longer than the file is checked against the whole file, then replaced
    await fs.writeFile(`${target}.ferry-part`, Buffer.concat([data, Buffer.from('extra')]));
    const again = await client.get('down-bad.bin', target);
    assert.equal(again.resumedFrom, SIZE);
    assert.ok((await fs.readFile(target)).equals(data));
    // a .ferry-part of other bytes, longer than the file: cut to nothing, no old byte left at its end
    await fs.writeFile(`${target}.ferry-part`, randomData(SIZE + 4096));
    const over = await client.get('down-bad.bin', target);
    assert.equal(over.resumedFrom, 0);
    assert.ok((await fs.readFile(target)).equals(data));
    await client.close();
  });
});
