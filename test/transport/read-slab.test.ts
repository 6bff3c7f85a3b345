import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import path from 'node:path';
import { describe, it } from 'node:test';
import { createHasher } from '../../src/io/digest.js';
import { InlineDigester } from '../../src/io/digester.js';
import { FileSink } from '../../src/io/file-sink.js';
import { adoptTlsWithSlabs, adoptWithSlabs } from '../../src/transport/adopt-socket.js';
import { loadServerCredentials, serverContext } from '../../src/transport/tls.js';
import { FIRST_SLAB_BYTES, MIN_READ_BYTES, ReadSlab, SLAB_BYTES } from '../../src/transport/read-slab.js';
import { eventually, randomData, tempDir } from '../helpers/fixtures.js';

/** Fills `count` bytes the way Node's onread does: into the region `next()` handed out. */
function read(slab: ReadSlab, count: number): Buffer {
  const region = slab.next();
  region.fill(7, 0, count);
  return slab.take(count, region);
}

describe('read slabs', () => {
  it('a slab whose held slices were all released is read into again once retired', () => {
    const slab = new ReadSlab(SLAB_BYTES);
    const first = read(slab, SLAB_BYTES - MIN_READ_BYTES + 1); // leaves a tail too short to read into
    const releaseFirst = slab.retain(first);
    slab.settle(false);
    const second = read(slab, 10); // so this read takes another slab; the first stays held
    assert.notEqual(second.buffer, first.buffer);
    slab.retain(second);
    slab.settle(false);
    releaseFirst();
    releaseFirst(); // a second call changes nothing
    const filler = read(slab, SLAB_BYTES - 10 - MIN_READ_BYTES + 1);
    slab.retain(filler);
    slab.settle(false);
    const third = read(slab, 10);
    assert.equal(third.buffer, first.buffer, 'the released slab is read into again');
    assert.ok(second.every((b) => b === 7), 'a held slice is not overwritten');
  });

  it('rewinds a slab nothing holds, so control traffic reads without allocating', () => {
    const slab = new ReadSlab(SLAB_BYTES);
    const a = read(slab, 100);
    slab.settle(false);
    const b = read(slab, 100);
    assert.equal(b.buffer, a.buffer);
    assert.equal(b.byteOffset, a.byteOffset, 'read into the same bytes again');
  });

  it('never reuses a slab a slice escaped from untracked, nor one still held', () => {
    const slab = new ReadSlab(SLAB_BYTES);
    const leaked = read(slab, SLAB_BYTES - MIN_READ_BYTES + 1);
    slab.settle(true);
    const held = read(slab, SLAB_BYTES - MIN_READ_BYTES + 1);
    assert.notEqual(held.buffer, leaked.buffer);
    slab.retain(held); // never released
    slab.settle(false);
    const later = read(slab, 10);
    assert.notEqual(later.buffer, leaked.buffer);
    assert.notEqual(later.buffer, held.buffer);
    assert.ok(leaked.every((b) => b === 7) && held.every((b) => b === 7), 'kept bytes were not overwritten');
  });

  it('starts a connection on a small slab, and takes full ones once a megabyte has come in', () => {
    const slab = new ReadSlab();
    const first = slab.next();
    assert.equal(first.length, FIRST_SLAB_BYTES, 'requests and small files fit a small slab');
    let taken = 0;
    const held: Buffer[] = [];
    while (taken < SLAB_BYTES) {
      const region = slab.next();
      const count = Math.min(region.length, 16 * 1024);
      const chunk = slab.take(count, region);
      slab.retain(chunk); // held, like a body chunk waiting for its write: no rewinding
      held.push(chunk);
      slab.settle(false);
      taken += count;
      if (taken < SLAB_BYTES) assert.ok(region.buffer.byteLength <= FIRST_SLAB_BYTES, `small slabs until 1 MiB came in (${taken})`);
    }
    assert.equal(slab.next().buffer.byteLength, SLAB_BYTES, 'then full slabs');
  });

  it('a file sink releases each chunk once written, and what it drops', async () => {
    const dir = await tempDir();
    try {
      const handle = await fs.open(path.join(dir, 'f'), 'w');
      const sink = new FileSink(handle, 0, new InlineDigester(createHasher('blake3')));
      const released: number[] = [];
      const chunks = Array.from({ length: 20 }, (_, i) => randomData(10_000 + i));
      chunks.forEach((chunk, i) => sink.write(chunk, () => released.push(i)));
      await sink.finish();
      assert.deepEqual(released.sort((a, b) => a - b), chunks.map((_, i) => i));
      const dropped = new FileSink(handle, 0, new InlineDigester(createHasher('sha256')));
      let droppedReleases = 0;
      for (let i = 0; i < 50; i++) dropped.write(randomData(100_000), () => droppedReleases++);
      await dropped.settle();
      assert.equal(droppedReleases, 50, 'written or dropped, every chunk is released');
      await handle.close();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('an accepted socket adopted for slab reads receives every byte and half-closes', async () => {
    const data = randomData(5 * 1024 * 1024 + 3);
    let adoptedReader: unknown;
    const server = net.createServer({ allowHalfOpen: true }, (accepted) => {
      const { socket, reader } = adoptWithSlabs(accepted, true);
      adoptedReader = reader;
      const parts: Buffer[] = [];
      reader!.attach((chunk) => (parts.push(Buffer.from(chunk)), false));
      socket.on('end', () => socket.end(`${Buffer.concat(parts).equals(data) ? 'same' : 'different'} ${Buffer.concat(parts).length}`));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as net.AddressInfo;
      const answer = await new Promise<string>((resolve, reject) => {
        const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => client.end(data));
        let text = '';
        client.on('data', (d: Buffer) => (text += d.toString()));
        client.on('end', () => resolve(text));
        client.on('error', reject);
      });
      assert.ok(adoptedReader !== undefined, 'Node 20 accepted sockets can be adopted');
      assert.equal(answer, `same ${data.length}`);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('an accepted socket adopted for TLS decrypts into slabs, answers, and closes once', async () => {
    const dir = await tempDir();
    const credentials = await loadServerCredentials(dir);
    const data = randomData(3 * 1024 * 1024 + 5);
    let adoptedReader: unknown;
    let closes = 0;
    let peer = '';
    const server = net.createServer({ allowHalfOpen: true }, (accepted) => {
      const { socket, reader } = adoptTlsWithSlabs(accepted, { secureContext: serverContext(credentials) });
      adoptedReader = reader;
      peer = `${socket.remoteAddress}`;
      socket.on('close', () => closes++);
      const parts: Buffer[] = [];
      let slabReads = 0;
      reader!.attach((chunk) => {
        slabReads++;
        parts.push(Buffer.from(chunk));
        return false;
      });
      socket.on('data', () => (slabReads = -1_000_000)); // would mean the slabs were bypassed
      socket.on('end', () => {
        const got = Buffer.concat(parts);
        socket.end(`${got.equals(data) ? 'same' : 'different'} ${got.length} ${slabReads > 0 ? 'slabs' : 'data events'}`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as net.AddressInfo;
      const answer = await new Promise<string>((resolve, reject) => {
        const client = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => client.end(data));
        let text = '';
        client.on('data', (d: Buffer) => (text += d.toString()));
        client.on('end', () => resolve(text));
        client.on('error', reject);
      });
      assert.ok(adoptedReader !== undefined, 'Node 20 accepted sockets can be adopted under TLS');
      assert.equal(answer, `same ${data.length} slabs`);
      assert.equal(peer, '127.0.0.1', 'the adopted socket knows its peer');
      await eventually(() => closes === 1, 3000, 'the adopted socket to close');
    } finally {
      await new Promise((resolve) => server.close(resolve));
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
