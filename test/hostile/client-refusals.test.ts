import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { connect, WireErrorCode, type FerryClient, type FerryError } from '../../src/index.js';
import { encodeMessage } from '../../src/protocol/index.js';
import { startFakeServer } from '../helpers/fake-server.js';
import { assertDigest, eventually, randomData, startServer, temporaries, type TestServer } from '../helpers/fixtures.js';

/**
 * Issue #10: a refusal in the middle of an upload body (QUOTA, NO_SPACE, TOO_LARGE) ends that
 * upload only. The client stops reading the source and completes the body the wire format
 * demands (PROTOCOL.md §5.1): a chunked body ends with its zero-length chunk, a sized one is
 * filled with zeros; then PUT_END (all-zero digest), and the other calls carry on.
 */

const MiB = 1024 * 1024;
const KiB = 1024;

/** A source that makes bytes as fast as they are read, forever. */
function endless(fill = 3): Readable {
  return new Readable({ read: function () { this.push(Buffer.alloc(64 * KiB, fill)); } });
}

function collect(): { sink: Writable; bytes: () => Buffer } {
  const parts: Buffer[] = [];
  return { sink: new Writable({ write: (chunk: Buffer, _e, done) => (parts.push(chunk), done()) }), bytes: () => Buffer.concat(parts) };
}

async function tempBytes(server: TestServer): Promise<number> {
  let total = 0;
  for (const name of await temporaries(server.root)) total += (await fs.stat(path.join(server.root, '.ferry', 'tmp', name)).catch(() => ({ size: 0 }))).size;
  return total;
}

describe('a refusal mid-upload ends only its own request (real server)', () => {
  it('a chunked upload over the server\'s maximum size: TOO_LARGE, while other calls on the connection go on', async () => {
    const server = await startServer({ maxFileSize: MiB });
    let client: FerryClient | undefined;
    try {
      client = await connect({ ...server.address, timeoutMs: 10_000 });
      const kept = randomData(300 * KiB);
      await client.put(kept, 'kept.bin');
      const source = endless();
      const small = randomData(100 * KiB);
      const out = collect();
      const [big, put, list, get] = await Promise.allSettled([
        client.put(source, 'too-big.bin'),
        client.put(small, 'small.bin'),
        client.list(),
        client.get('kept.bin', out.sink),
      ]);
      assert.equal(big.status, 'rejected');
      assert.equal((big.reason as FerryError).code, 'TOO_LARGE');
      assert.ok(source.destroyed, 'the source is no longer read');
      assert.ok(put.status === 'fulfilled');
      assertDigest(put.value, small);
      assert.ok(list.status === 'fulfilled');
      assert.ok(get.status === 'fulfilled' && out.bytes().equals(kept));
      assert.deepEqual((await client.list()).map((e) => e.name), ['kept.bin', 'small.bin']);
      await eventually(async () => (await temporaries(server.root)).length === 0, 3000, 'temporaries to go');
    } finally {
      await client?.close();
      await server.stop();
    }
  });

  it('a sized upload holds its quota from the start: a concurrent upload that would pass it is refused at once, and both connections stay usable', async () => {
    // (A sized body cannot meet the quota mid-way any more: its size is reserved before the
    // body is accepted. The filler path of a sized refusal is checked byte for byte against a
    // fake server below; with a real server only a full disk refuses a sized body mid-way.)
    const server = await startServer({ quota: 3 * MiB });
    const first = await connect({ ...server.address, timeoutMs: 10_000 });
    const second = await connect({ ...server.address, timeoutMs: 10_000 });
    try {
      const source = new PassThrough();
      const upload = first.put(source, 'a.bin', { size: 2 * MiB });
      source.write(Buffer.alloc(MiB, 1));
      await eventually(async () => (await tempBytes(server)) >= MiB, 5000, 'the first MiB to arrive');
      await assert.rejects(second.put(randomData(1.5 * MiB), 'b.bin'), (e: FerryError) => e.code === 'QUOTA' && !e.fatal);
      const small = randomData(512 * KiB);
      assertDigest(await second.put(small, 'c.bin'), small);
      source.end(Buffer.alloc(MiB, 1));
      await upload;
      assert.equal((await first.stat('a.bin')).size, 2 * MiB);
      const out = collect();
      await first.get('c.bin', out.sink);
      assert.ok(out.bytes().equals(small));
      await eventually(async () => (await temporaries(server.root)).length === 0, 3000, 'temporaries to go');
    } finally {
      await first.close();
      await second.close();
      await server.stop();
    }
  });

  for (const sized of [true, false]) {
    it(`a ${sized ? 'sized' : 'chunked'} upload whose source fails mid-body: LOCAL_IO, nothing stored, the connection usable`, async () => {
      const server = await startServer();
      const client = await connect({ ...server.address, timeoutMs: 10_000 });
      try {
        let sent = 0;
        const source = new Readable({
          read() {
            if (sent >= 512 * KiB) return void this.destroy(new Error('disk on fire'));
            sent += 64 * KiB;
            this.push(Buffer.alloc(64 * KiB, 9));
          },
        });
        await assert.rejects(client.put(source, 'broken.bin', { size: sized ? 2 * MiB : undefined }), (e: FerryError) => e.code === 'LOCAL_IO' && /disk on fire/.test(e.message));
        await assert.rejects(client.stat('broken.bin'), (e: FerryError) => e.code === 'NOT_FOUND');
        const data = randomData(10 * KiB);
        assertDigest(await client.put(data, 'fine.bin'), data);
        await eventually(async () => (await temporaries(server.root)).length === 0, 3000, 'temporaries to go');
      } finally {
        await client.close();
        await server.stop();
      }
    });
  }
});

describe('a refusal mid-upload, byte by byte (fake server)', () => {
  it('a sized body refused before it was sent is completed with zeros to the declared size, then PUT_END with an all-zero digest', async () => {
    const bodies = new Map<number, Buffer[]>();
    const ends: Buffer[] = [];
    const fake = await startFakeServer(
      (m, socket) => {
        if (m.type === 'PUT') socket.write(encodeMessage({ type: 'ERROR', id: m.id, code: WireErrorCode.EXISTS, message: 'taken' }));
        if (m.type === 'PUT_END') ends.push(m.digest);
        if (m.type === 'STAT') socket.write(encodeMessage({ type: 'ENTRY', id: m.id, entry: { name: m.name, kind: 'file', size: 0, mtimeMs: 0, digest: Buffer.alloc(32) } }));
      },
      { onBody: (id, data) => bodies.set(id, [...(bodies.get(id) ?? []), Buffer.from(data)]) },
    );
    const client = await connect({ host: '127.0.0.1', port: fake.port });
    try {
      let pushed = false;
      // 900 KiB declared (under the 1 MiB from which the client awaits PUT_READY): the body follows the PUT at once.
      const source = new Readable({ read() { if (!pushed) { pushed = true; this.push(Buffer.alloc(100 * KiB, 0x33)); } } });
      await assert.rejects(client.put(source, 'x.bin', { size: 900 * KiB }), (e: FerryError) => e.code === 'EXISTS');
      assert.ok(source.destroyed);
      assert.equal((await client.stat('after')).name, 'after');
      const [body] = [...bodies.values()].map((parts) => Buffer.concat(parts));
      assert.equal(body!.length, 900 * KiB);
      const real = body!.indexOf(0) === -1 ? body!.length : body!.indexOf(0);
      assert.ok(real === 0 || real === 100 * KiB, `${real} source bytes before the filler`);
      assert.ok(body!.subarray(real).equals(Buffer.alloc(900 * KiB - real)), 'the rest is zeros');
      assert.deepEqual(ends, [Buffer.alloc(32)]);
    } finally {
      client.destroy();
      await fake.close();
    }
  });

  it('a sized body refused with more than 64 MiB left closes the connection: QUOTA for it, a clear CLOSED for the others', async () => {
    let received = 0;
    const fake = await startFakeServer(
      (m, socket, peer) => {
        if (m.type === 'PUT') {
          socket.write(encodeMessage({ type: 'PUT_READY', id: m.id, offset: 0, prefixDigest: Buffer.alloc(32) }));
          peer.expectBody(m.id, m.size);
        }
      },
      {
        onBody: (id, data, socket) => {
          const before = received;
          received += data.length;
          if (before < MiB && received >= MiB) socket.write(encodeMessage({ type: 'ERROR', id, code: WireErrorCode.QUOTA, message: 'full' }));
        },
      },
    );
    const client = await connect({ host: '127.0.0.1', port: fake.port, timeoutMs: 10_000 });
    try {
      const source = endless();
      const upload = client.put(source, 'huge.bin', { size: 200 * MiB, resume: false });
      const waiting = client.stat('queued-behind-the-body');
      await assert.rejects(upload, (e: FerryError) => e.code === 'QUOTA');
      await assert.rejects(waiting, (e: FerryError) => e.code === 'CLOSED' && /huge\.bin.*unsent.*QUOTA/.test(e.message));
      assert.ok(source.destroyed);
      assert.ok(received < 100 * MiB, `${received} bytes sent`);
      await eventually(() => fake.open === 0, 3000, 'the connection to close');
    } finally {
      client.destroy();
      await fake.close();
    }
  });
});
