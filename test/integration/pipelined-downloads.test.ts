import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { connect, type FerryClient } from '../../src/index.js';
import { encodeMessage, PROTOCOL_VERSION } from '../../src/protocol/index.js';
import { startFakeServer } from '../helpers/fake-server.js';
import { assertDigest, randomData, sha256, sha256File, startServer, tempDir, type TestServer } from '../helpers/fixtures.js';

const MiB = 1024 * 1024;
const SIZES = [0, 1, 65535, 65536, 65537, MiB - 1, MiB, MiB + 1, 9 * MiB];

/**
 * A stream that takes its time: it holds every chunk it is given by reference (as a real
 * slow consumer's queue does) and lets each one go a little later, so the download sees
 * backpressure and the client's read buffers are referenced long after they were read.
 */
function slowSink(): { stream: Writable; received: () => Buffer } {
  const kept: Buffer[] = [];
  let writes = 0;
  const stream = new Writable({
    highWaterMark: 32 * 1024,
    write(chunk: Buffer, _encoding, done) {
      kept.push(chunk);
      // Every few chunks a timer, else the next turn: slow, but a 9 MiB body still ends soon.
      if (++writes % 8 === 0) setTimeout(done, 1);
      else setImmediate(done);
    },
  });
  return { stream, received: () => Buffer.concat(kept) };
}

describe('many downloads on one connection (plain TCP, onread)', () => {
  let server: TestServer;
  let client: FerryClient;
  let local: string;
  const files = new Map<number, Buffer>();

  before(async () => {
    server = await startServer();
    client = await connect(server.address);
    local = await tempDir();
    for (const size of SIZES) {
      const data = randomData(size);
      files.set(size, data);
      const source = path.join(local, `src-${size}`);
      await fs.writeFile(source, data);
      await client.put(source, `many/${size}.bin`);
    }
  });
  after(async () => {
    await client.close();
    await server.stop();
    await fs.rm(local, { recursive: true, force: true });
  });

  it('pipelined, into slow streams and files at once, every body arrives intact', async () => {
    const streams = SIZES.map((size) => ({ size, sink: slowSink() }));
    // All requests are sent before any body is read: their bodies share the same reads.
    const results = await Promise.all([
      ...streams.map(({ size, sink }) => client.get(`many/${size}.bin`, sink.stream)),
      ...SIZES.map((size) => client.get(`many/${size}.bin`, path.join(local, `dst-${size}`))),
      ...streams.map(({ size }) => client.get(`many/${size}.bin`, path.join(local, `again-${size}`))),
    ]);
    for (const [index, result] of results.entries()) {
      const size = SIZES[index % SIZES.length]!;
      assert.equal(result.size, size);
      assertDigest(result, files.get(size)!);
    }
    for (const { size, sink } of streams) {
      const got = sink.received();
      assert.equal(got.length, size, `${size}-byte stream: length`);
      assert.equal(sha256(got), sha256(files.get(size)!), `${size}-byte stream: content`);
    }
    for (const size of SIZES) {
      assert.equal(await sha256File(path.join(local, `dst-${size}`)), sha256(files.get(size)!), `${size}-byte file`);
      assert.equal(await sha256File(path.join(local, `again-${size}`)), sha256(files.get(size)!), `${size}-byte file (again)`);
    }
  });

  it('a sink that stops taking bytes stops the reads, and the rest follows when it resumes', async () => {
    const held: (() => void)[] = [];
    const kept: Buffer[] = [];
    let stalled = true;
    const stream = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _encoding, done) {
        kept.push(chunk);
        if (stalled) held.push(done);
        else setImmediate(done);
      },
    });
    let received = 0;
    const download = client.get(`many/${9 * MiB}.bin`, stream, { onProgress: ({ bytes }) => (received = bytes) });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const whileStalled = received;
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Paused: nothing more arrived; what did arrive is bounded by one read past the sink's mark.
    assert.equal(received, whileStalled);
    assert.ok(received < 9 * MiB, `read ${received} bytes into a stalled sink`);
    stalled = false;
    for (const done of held.splice(0)) done();
    const result = await download;
    assertDigest(result, files.get(9 * MiB)!);
    assert.ok(Buffer.concat(kept).equals(files.get(9 * MiB)!));
  });

  it('the connection still answers after the burst (no bytes lost or left over)', async () => {
    const entries = await client.list('many');
    assert.equal(entries.length, SIZES.length);
    const sink = slowSink();
    await client.get(`many/${9 * MiB}.bin`, sink.stream);
    assert.ok(sink.received().equals(files.get(9 * MiB)!));
  });
});

/** Writes `bytes` a few at a time, each piece after the client has read the one before. */
async function dribble(socket: Writable, bytes: Buffer, piece: number): Promise<void> {
  for (let at = 0; at < bytes.length; at += piece) {
    socket.write(bytes.subarray(at, at + piece));
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

describe('replies that arrive in pieces (plain TCP, onread)', () => {
  it('a frame split over many reads is decoded from intact bytes', { timeout: 10_000 }, async () => {
    const body = randomData(100_000);
    const fake = await startFakeServer(
      (message, socket) => {
        if (message.type !== 'GET') return;
        const head = encodeMessage({ type: 'GET_OK', id: message.id, size: body.length, offset: 0, mtimeMs: 1_700_000_000_000, digest: Buffer.from(sha256(body), 'hex') });
        // The reply's frame in 3-byte pieces (each read holds only part of it), then the body.
        void dribble(socket, head, 3).then(() => socket.write(body));
      },
      {
        onHello: (socket) => {
          const hello = encodeMessage({ type: 'SERVER_HELLO', id: 0, version: PROTOCOL_VERSION, serverName: 'dribbling', maxFileSize: 2 ** 40, flags: 0 });
          void dribble(socket, hello, 2);
        },
      },
    );
    try {
      const client = await connect({ host: '127.0.0.1', port: fake.port });
      try {
        const sink = slowSink();
        const result = await client.get('x.bin', sink.stream);
        assertDigest(result, body);
        assert.ok(sink.received().equals(body));
      } finally {
        await client.close();
      }
    } finally {
      await fake.close();
    }
  });
});
