import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, type FerryError } from '../../src/index.js';
import { encodeMessage, HelloFlag, PutFlag, ServerFlag, type Message } from '../../src/protocol/index.js';
import { settledYet, startFakeServer, type FakeServer } from '../helpers/fake-server.js';
import { eventually, randomData, sha256, startServer, tempDir, type TestServer } from '../helpers/fixtures.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { RawPeer } from '../helpers/raw-peer.js';

/**
 * WORKING (PROTOCOL.md §3.1): while the server works long on a connection's requests — hashing
 * a large file that has no record, a slow disk, a wait for a file slot — a client that offered
 * the HELLO flag hears WORKING every 5 s, so its silence deadline does not give up on a server
 * that is busy for it. Time is a ManualClock; the short real waits only let loopback I/O happen.
 */

const MiB = 1024 * 1024;
const turn = (ms = 30): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const workingCount = (peer: RawPeer): number => peer.messages.filter((m) => m.type === 'WORKING').length;
const helloOf = (peer: RawPeer): Message => peer.messages.find((m) => m.type === 'SERVER_HELLO')!;

describe('the server sends WORKING while it works on a request', () => {
  let clock: ManualClock;
  let server: TestServer;
  const big = randomData(16 * MiB);

  before(async () => {
    clock = new ManualClock();
    // One file slot: a download that is not read holds it, and other transfers wait for it (server work).
    server = await startServer({ clock, maxOpenFiles: 1, digest: 'sha256' });
    const client = await connect(server.address);
    await client.put(big, 'big.bin');
    await client.put(randomData(100), 'small.bin');
    await client.close();
  });
  after(() => server.stop());

  /** A peer that asks for big.bin and stops reading: its body stalls and keeps the only file slot. */
  async function slotHolder(): Promise<RawPeer> {
    const holder = await RawPeer.connect(server.address.port);
    holder.socket.pause();
    holder.send({ type: 'GET', id: 1, name: 'big.bin', offset: 0 });
    await turn(200);
    return holder;
  }

  it('every 5 s to a client that offered it, while its GET waits for a file slot; never to one that did not', async (t) => {
    const holder = await slotHolder();
    const offered = await RawPeer.connect(server.address.port, { flags: HelloFlag.WORKING });
    const plain = await RawPeer.connect(server.address.port);
    t.after(() => [holder, offered, plain].forEach((peer) => peer.destroy())); // also when an assertion fails
    assert.ok(((helloOf(offered) as { flags: number }).flags & ServerFlag.WORKING) !== 0, 'SERVER_HELLO says WORKING will come');
    assert.equal((helloOf(plain) as { flags: number }).flags & ServerFlag.WORKING, 0);
    for (const peer of [offered, plain]) peer.send({ type: 'GET', id: 1, name: 'small.bin', offset: 0 });
    await turn();
    clock.advance(4_999);
    await turn();
    assert.equal(workingCount(offered), 0, 'not before 5 s');
    clock.advance(1);
    await offered.waitFor((m) => m.type === 'WORKING');
    clock.advance(4_998);
    await turn();
    assert.equal(workingCount(offered), 1, 'one per 5 s');
    clock.advance(2); // 10 s: the wait for a slot ends with BUSY
    await offered.waitFor((m) => m.type === 'ERROR' && m.id === 1);
    await plain.waitFor((m) => m.type === 'ERROR' && m.id === 1);
    const sent = workingCount(offered);
    clock.advance(30_000);
    await turn();
    assert.equal(workingCount(offered), sent, 'none once the server has nothing to do for the connection');
    assert.equal(workingCount(plain), 0, 'a client that did not offer the flag never gets the frame');
    const working = offered.messages.find((m) => m.type === 'WORKING')!;
    assert.equal(working.id, 0);
  });

  it('never inside a download body: a transfer waiting for a slot beside a stalled body leaves the body whole', async (t) => {
    // One connection: GET big.bin, not read, so its body stalls mid-way holding the only file
    // slot; then a PUT whose temporary waits for that slot — server work, so WORKING is due.
    const peer = await RawPeer.connect(server.address.port, { flags: HelloFlag.WORKING });
    t.after(() => peer.destroy());
    peer.socket.pause();
    peer.send({ type: 'GET', id: 1, name: 'big.bin', offset: 0 });
    await turn(200);
    peer.send({ type: 'PUT', id: 2, name: 'later.bin', flags: PutFlag.AWAIT_READY, size: 10 });
    await turn();
    clock.advance(5_000); // WORKING is due now, mid-body: it must wait
    await turn();
    clock.advance(4_000);
    await turn();
    peer.socket.resume();
    await peer.waitFor((m) => m.type === 'PUT_READY' && m.id === 2, 10_000);
    const body = Buffer.concat(peer.bodies.get(1) ?? []);
    assert.equal(body.length, big.length);
    assert.equal(sha256(body), sha256(big), 'the body arrived whole, with no frame in it');
    assert.equal(peer.closed, false);
  });
});

describe('the client takes WORKING as a sign of life', () => {
  let dir: string;
  const fakes: FakeServer[] = [];
  const TIMEOUT = 60_000;
  const data = Buffer.from('hello');

  before(async () => (dir = await tempDir()));
  after(async () => {
    for (const fake of fakes) await fake.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** A server that takes a GET and answers only when told; returns what it saw and how to answer. */
  async function slowServer(): Promise<{ fake: FakeServer; helloFlags: () => number | undefined; request: () => { socket: net.Socket; id: number } | undefined }> {
    let flags: number | undefined;
    let request: { socket: net.Socket; id: number } | undefined;
    const fake = await startFakeServer(
      (m, socket) => {
        if (m.type === 'GET') request = { socket, id: m.id };
      },
      {
        onHello: (socket, hello) => {
          flags = (hello as { flags: number }).flags;
          socket.write(encodeMessage({ type: 'SERVER_HELLO', id: 0, version: 7, serverName: 'slow', maxFileSize: 2 ** 40, flags: ServerFlag.WORKING }));
        },
      },
    );
    fakes.push(fake);
    return { fake, helloFlags: () => flags, request: () => request };
  }

  it('offers WORKING, and waits out two minutes of a silent-but-working server with a 60 s timeout', async () => {
    const slow = await slowServer();
    const clock = new ManualClock();
    const client = await connect({ host: '127.0.0.1', port: slow.fake.port, timeoutMs: TIMEOUT, clock, digest: 'sha256' });
    assert.ok((slow.helloFlags()! & HelloFlag.WORKING) !== 0, 'the HELLO offers WORKING');
    const target = path.join(dir, 'kept-alive.txt');
    const call = client.get('f.txt', target);
    await eventually(() => slow.request() !== undefined, 3000, 'the GET to arrive');
    const { socket, id } = slow.request()!;
    for (let step = 0; step < 6; step++) {
      clock.advance(TIMEOUT / 3);
      socket.write(encodeMessage({ type: 'WORKING', id: 0 }));
      await turn();
    }
    assert.equal(await settledYet(call), false, 'still waiting after 120 s');
    socket.write(encodeMessage({ type: 'GET_OK', id, size: data.length, offset: 0, mtimeMs: 0, digest: createHash('sha256').update(data).digest() }));
    socket.write(data);
    const result = await call;
    assert.equal(result.size, data.length);
    assert.equal(await fs.readFile(target, 'utf8'), 'hello');
    await client.close();
  });

  it('without WORKING the same silence ends in TIMEOUT at 60 s', async () => {
    const slow = await slowServer();
    const clock = new ManualClock();
    const client = await connect({ host: '127.0.0.1', port: slow.fake.port, timeoutMs: TIMEOUT, clock, digest: 'sha256' });
    const call = client.get('f.txt', path.join(dir, 'silent.txt'));
    await eventually(() => slow.request() !== undefined, 3000, 'the GET to arrive');
    for (let step = 0; step < 2; step++) {
      clock.advance(TIMEOUT / 3);
      await turn();
    }
    assert.equal(await settledYet(call), false, 'not before the deadline');
    clock.advance(TIMEOUT / 3);
    await assert.rejects(call, (e: FerryError) => e.code === 'TIMEOUT');
    await client.close().catch(() => undefined);
  });
});
