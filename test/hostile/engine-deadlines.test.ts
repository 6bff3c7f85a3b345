import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, FerryError, WireErrorCode } from '../../src/index.js';
import { encodeMessage, type Message } from '../../src/protocol/index.js';
import { eventually, makeSentinel, assertHealthy, randomData, startServer, temporaries, type Sentinel, type TestServer } from '../helpers/fixtures.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { RawPeer } from '../helpers/raw-peer.js';

/**
 * Issue 9: every action the peer owes has a deadline, and `--idle-timeout` means "the peer
 * made no progress for this long" whatever is in flight. Time is a ManualClock: the test moves
 * it; the short real waits only let loopback I/O happen.
 */

const IDLE_MS = 10_000;
const errorOf = (peer: RawPeer, id: number): Message | undefined => peer.messages.find((m) => m.type === 'ERROR' && m.id === id);
const turn = (ms = 20): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Moves the clock past the idle deadline (and the 2 s linger after a fatal error) until the
 * server has closed the connection; then lets a peer that had stopped reading see the close.
 */
async function advanceUntilClosed(clock: ManualClock, server: TestServer, peer: RawPeer): Promise<void> {
  const before = server.server.connectionCount;
  for (let round = 0; round < 3 && server.server.connectionCount === before; round++) {
    clock.advance(IDLE_MS);
    await turn();
  }
  await eventually(() => server.server.connectionCount === before - 1, 1000, 'the server to close the connection');
  peer.socket.resume();
  await peer.waitClosed();
}

describe('deadlines on everything the peer owes', () => {
  let clock: ManualClock;
  let server: TestServer;
  let sentinel: Sentinel;

  before(async () => {
    sentinel = await makeSentinel();
    clock = new ManualClock();
    server = await startServer({ clock, idleTimeoutMs: IDLE_MS, handshakeTimeoutMs: IDLE_MS });
    const client = await connect(server.address);
    await client.put(randomData(1000), 'exists.bin');
    await client.put(randomData(128 * 1024 * 1024), 'big.bin');
    await client.close();
    // The raw peers below speak SHA-256: have it recorded now, so a GET starts sending at once.
    const sha256Client = await connect({ ...server.address, digest: 'sha256' });
    await sha256Client.stat('big.bin');
    await sha256Client.close();
  });
  after(async () => {
    await server.stop();
    await sentinel.cleanup();
  });

  it('closes a PUT whose body stops mid-way, and keeps nothing open', async () => {
    const peer = await RawPeer.connect(server.address.port);
    peer.send({ type: 'PUT', id: 1, name: 'stalled.bin', flags: 0, size: 1024 * 1024 });
    peer.write(randomData(1000));
    await eventually(async () => (await temporaries(server.root)).length === 1, 3000, 'the upload to start');
    await advanceUntilClosed(clock, server, peer);
    const fatal = errorOf(peer, 0);
    assert.equal(fatal?.type === 'ERROR' && fatal.code, WireErrorCode.TIMEOUT);
    assert.match(fatal?.type === 'ERROR' ? fatal.message : '', /no body bytes for request 1/);
    await eventually(async () => (await temporaries(server.root)).length === 0, 3000, 'the temporary to be released');
  });

  it('closes a refused PUT whose body never comes', async () => {
    const peer = await RawPeer.connect(server.address.port);
    peer.send({ type: 'PUT', id: 1, name: 'exists.bin', flags: 0, size: 1024 * 1024 });
    const refusal = await peer.waitFor((m) => m.type === 'ERROR' && m.id === 1);
    assert.equal(refusal.type === 'ERROR' && refusal.code, WireErrorCode.EXISTS);
    await advanceUntilClosed(clock, server, peer);
    assert.equal(errorOf(peer, 0)?.type === 'ERROR' && (errorOf(peer, 0) as { code: number }).code, WireErrorCode.TIMEOUT);
  });

  it('keeps a slow reader that makes progress, and closes a GET whose reader stops reading', async () => {
    const peer = await RawPeer.connect(server.address.port);
    peer.socket.pause();
    peer.send({ type: 'GET', id: 1, name: 'big.bin', offset: 0 });
    // Reads a little every half idle period: 3 idle periods pass, but never one without progress.
    const receivedSoFar = (): number => (peer.bodies.get(1) ?? []).reduce((sum, b) => sum + b.length, 0);
    for (let i = 0; i < 6; i++) {
      // Reads until some bytes came (a fixed few ms read nothing on a loaded machine).
      const before = receivedSoFar();
      peer.socket.resume();
      await eventually(() => receivedSoFar() > before, 3000, `bytes to arrive (round ${i})`);
      peer.socket.pause();
      await turn(30);
      clock.advance(IDLE_MS / 2);
      await turn();
      assert.equal(peer.closed, false, `closed although the reader read (round ${i})`);
    }
    const received = receivedSoFar();
    assert.ok(received < 128 * 1024 * 1024, 'the download is still under way');
    // Stops reading: the kernel buffers fill, then no byte moves.
    await turn(200);
    await advanceUntilClosed(clock, server, peer);
    await assertHealthy(server, sentinel);
  });

  it('does not let trickled bytes (slowloris) stretch the handshake deadline', async () => {
    // A HELLO a byte at a time (never the last), the clock moving an eighth of the deadline
    // after each: the connection must close once the deadline is reached, bytes or not.
    const hello = encodeMessage({ type: 'HELLO', id: 0, version: 1, clientName: 'attacker', flags: 0 });
    const step = IDLE_MS / 8;
    const peer = await RawPeer.connect(server.address.port, { hello: false });
    let advanced = 0;
    let sent = 0;
    while (sent < hello.length - 1 && !peer.closed) {
      peer.write(hello.subarray(sent, ++sent));
      await turn();
      clock.advance(step);
      advanced += step;
      await turn();
    }
    await peer.waitClosed();
    assert.ok(sent >= 8, `${sent} bytes trickled before the close`);
    assert.ok(advanced >= IDLE_MS && advanced <= IDLE_MS + 2 * step, `closed after ${advanced} ms of the clock (deadline ${IDLE_MS})`);
    await assertHealthy(server, sentinel);
  });

  it('closes a connection with nothing in flight after the idle timeout, not before', async () => {
    const peer = await RawPeer.connect(server.address.port);
    clock.advance(IDLE_MS - 1);
    await turn();
    assert.equal(peer.closed, false);
    clock.advance(2);
    await peer.waitClosed();
    assert.match((errorOf(peer, 0) as { message: string } | undefined)?.message ?? '', /idle/);
  });
});

describe('open files are taken when bytes move, under a server-wide cap', () => {
  let clock: ManualClock;
  let server: TestServer;

  before(async () => {
    clock = new ManualClock();
    server = await startServer({ clock, maxOpenFiles: 4 });
    const client = await connect(server.address);
    await client.put(randomData(8 * 1024 * 1024), 'big.bin');
    await client.close();
  });
  after(() => server.stop());

  /** Descriptors of this process open on regular files under the server's root (not its folders). */
  async function openUnderRoot(): Promise<number> {
    let count = 0;
    for (const fd of await fs.readdir('/proc/self/fd')) {
      const target = await fs.readlink(path.join('/proc/self/fd', fd)).catch(() => '');
      if (target.startsWith(server.root) && (await fs.stat(target).catch(() => undefined))?.isFile()) count++;
    }
    return count;
  }

  it('20 connections pipelining 10 GETs each without reading hold at most 4 files; others get BUSY, not EMFILE', async () => {
    const peers = await Promise.all(Array.from({ length: 20 }, () => RawPeer.connect(server.address.port)));
    for (const peer of peers) {
      peer.socket.pause();
      for (let id = 1; id <= 10; id++) peer.send({ type: 'GET', id, name: 'big.bin', offset: 0 });
    }
    await turn(300);
    const open = await openUnderRoot();
    assert.ok(open <= 4, `${open} files open under the root`);
    // A well-behaved client: requests that need no file are answered at once …
    const client = await connect({ ...server.address, timeoutMs: 60_000 });
    assert.equal((await client.stat('big.bin')).size, 8 * 1024 * 1024);
    // … and one that needs a file waits for a slot, then gets a clear BUSY.
    const waiting = client.get('big.bin', path.join(server.root, '..', `ferry-out-${process.pid}.bin`)).then(
      () => undefined,
      (error: unknown) => error,
    );
    await turn(100);
    clock.advance(10_000);
    const error = await waiting;
    assert.ok(error instanceof FerryError && error.code === 'BUSY', `expected BUSY, got ${String(error)}`);
    for (const peer of peers) peer.destroy();
    await eventually(async () => (await openUnderRoot()) === 0, 3000, 'files to be closed');
    await client.close();
  });
});

describe('protocol edges the document now fixes', () => {
  let server: TestServer;
  before(async () => (server = await startServer()));
  after(() => server.stop());

  it('answers every request received before a half-close, then closes', async () => {
    const peer = await RawPeer.connect(server.address.port);
    for (let id = 1; id <= 5; id++) peer.send({ type: 'STAT', id, name: `missing-${id}` });
    peer.socket.end();
    await peer.waitClosed();
    const answered = peer.messages.filter((m) => m.type === 'ERROR' && m.id > 0).map((m) => m.id);
    assert.deepEqual(answered.sort(), [1, 2, 3, 4, 5]);
  });

  it('treats a request with id 0 after HELLO as a protocol error', async () => {
    const peer = await RawPeer.connect(server.address.port);
    peer.send({ type: 'STAT', id: 0, name: 'x' });
    await peer.waitClosed();
    assert.equal((errorOf(peer, 0) as { code: number } | undefined)?.code, WireErrorCode.PROTOCOL);
  });

  it('refuses unknown flag bits with UNSUPPORTED and stays usable (the PUT body is read and dropped)', async () => {
    const peer = await RawPeer.connect(server.address.port);
    peer.send({ type: 'LIST', id: 1, prefix: '', flags: 0x80 });
    peer.send({ type: 'PUT', id: 2, name: 'flags.bin', flags: 0x40, size: 3 });
    peer.write(Buffer.from('abc'));
    peer.write(encodeMessage({ type: 'PUT_END', id: 2, digest: Buffer.alloc(32) }));
    peer.send({ type: 'STAT', id: 3, name: 'flags.bin' });
    await peer.waitFor((m) => m.id === 3);
    assert.equal((errorOf(peer, 1) as { code: number } | undefined)?.code, WireErrorCode.UNSUPPORTED);
    assert.equal((errorOf(peer, 2) as { code: number } | undefined)?.code, WireErrorCode.UNSUPPORTED);
    assert.equal((errorOf(peer, 3) as { code: number } | undefined)?.code, WireErrorCode.NOT_FOUND);
    assert.equal(peer.closed, false);
    peer.destroy();
  });
});
