import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { connect, WireErrorCode, type FerryError } from '../../src/index.js';
import { createDigester } from '../../src/io/digester.js';
import { encodeMessage } from '../../src/protocol/index.js';
import { activeResources, openDescriptors, settledYet, settleIo, startFakeServer, type FakeServer } from '../helpers/fake-server.js';
import { eventually, tempDir } from '../helpers/fixtures.js';
import { ManualClock } from '../helpers/manual-clock.js';

/**
 * Issue #9/#10: every client call settles within its deadline on every path (deadlines on an
 * injected clock), and after a failure nothing the library made keeps the process alive: the
 * hashing worker is released (large transfers hash off-thread), sockets and files are closed.
 */

const MiB = 1024 * 1024;
const BIG = 16 * MiB; // over the 8 MiB from which hashing runs on a worker thread
const SHA = Buffer.alloc(32, 7);
/** Long in real time: only the manual clock can make these deadlines pass within a test. */
const TIMEOUT = 60_000;

/** `call`, or a failure if it has not settled within `ms` of real time. */
function within<T>(call: Promise<T>, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms)));
  return Promise.race([call, late]).finally(() => clearTimeout(timer));
}

describe('client deadlines and clean failure', () => {
  let dir: string;
  let bigFile: string;
  before(async () => {
    dir = await tempDir();
    bigFile = path.join(dir, 'big.bin');
    await fs.writeFile(bigFile, Buffer.alloc(24 * MiB, 1));
    // Start the hashing thread once: its own descriptors stay for the life of the process.
    const warm = createDigester('sha256', BIG);
    warm.update(Buffer.alloc(1));
    await warm.digest();
  });
  after(async () => {
    for (const fake of fakes) await fake.close(); // any a failed assertion left running
    await fs.rm(dir, { recursive: true, force: true });
  });

  const fakes: FakeServer[] = [];
  const fakeServer = async (...args: Parameters<typeof startFakeServer>): Promise<FakeServer> => {
    const fake = await startFakeServer(...args);
    fakes.push(fake);
    return fake;
  };

  /** Runs `scenario` and checks that afterwards no worker, socket or file of the client is left. */
  async function leavesNothing(scenario: () => Promise<FakeServer>): Promise<void> {
    await settleIo();
    const descriptors = openDescriptors();
    assert.equal(activeResources('MessagePort'), 0);
    const fake = await scenario();
    await fake.close();
    await eventually(async () => (await settleIo(), openDescriptors() <= descriptors), 3000, 'the client to close its socket and files');
    assert.equal(activeResources('MessagePort'), 0, 'a hashing worker still holds the process open');
  }

  it('a get whose server announces 16 MiB, sends 1 MiB and stalls: TIMEOUT at the deadline, worker released', async () => {
    await leavesNothing(async () => {
      const fake = await fakeServer((m, socket) => {
        if (m.type !== 'GET') return void socket.write(encodeMessage({ type: 'ERROR', id: m.id, code: WireErrorCode.NOT_FOUND, message: 'no' }));
        socket.write(encodeMessage({ type: 'GET_OK', id: m.id, size: BIG, offset: 0, mtimeMs: 0, digest: SHA }));
        socket.write(Buffer.alloc(MiB));
      });
      const clock = new ManualClock();
      const client = await connect({ host: '127.0.0.1', port: fake.port, timeoutMs: TIMEOUT, clock });
      let got = 0;
      let reached: () => void = () => undefined;
      const oneMiB = new Promise<void>((resolve) => (reached = resolve));
      const call = client.get('big.bin', path.join(dir, 'stalled'), { onProgress: (p) => (got = p.bytes) >= MiB && reached() });
      await oneMiB;
      assert.ok(activeResources('MessagePort') > 0, 'the download hashes on a worker thread');
      clock.advance(TIMEOUT - 1);
      assert.equal(await settledYet(call), false, 'not before the deadline');
      clock.advance(1);
      await assert.rejects(within(call), (e: FerryError) => e.code === 'TIMEOUT' && /sent nothing for 60 s/.test(e.message));
      assert.equal(got, MiB);
      // What arrived is kept for a resume.
      assert.equal((await fs.stat(path.join(dir, 'stalled.ferry-part'))).size, MiB);
      await assert.rejects(fs.stat(path.join(dir, 'stalled.ferry-lock')), { code: 'ENOENT' });
      return fake;
    });
  });

  it('a get whose server dies mid-body: CLOSED, worker released', async () => {
    await leavesNothing(async () => {
      const fake = await fakeServer((m, socket) => {
        if (m.type !== 'GET') return void socket.write(encodeMessage({ type: 'ERROR', id: m.id, code: WireErrorCode.NOT_FOUND, message: 'no' }));
        socket.write(encodeMessage({ type: 'GET_OK', id: m.id, size: BIG, offset: 0, mtimeMs: 0, digest: SHA }));
        socket.write(Buffer.alloc(MiB), () => socket.destroy());
      });
      const client = await connect({ host: '127.0.0.1', port: fake.port, timeoutMs: TIMEOUT, clock: new ManualClock() });
      await assert.rejects(within(client.get('big.bin', path.join(dir, 'died'))), (e: FerryError) => e.code === 'CLOSED');
      await fs.rm(path.join(dir, 'died.ferry-part'), { force: true });
      return fake;
    });
  });

  it('a put of a 24 MiB file whose server dies mid-body: CLOSED, worker released, file closed', async () => {
    await leavesNothing(async () => {
      let received = 0;
      const fake = await fakeServer(
        (m, socket, peer) => {
          if (m.type === 'PUT') {
            socket.write(encodeMessage({ type: 'PUT_READY', id: m.id, offset: 0, prefixDigest: SHA }));
            peer.expectBody(m.id, m.size);
          } else {
            socket.write(encodeMessage({ type: 'PARTIAL', id: m.id, offset: 0, digest: SHA }));
          }
        },
        { onBody: (_id, data, socket) => (received += data.length) > 2 * MiB && socket.destroy() },
      );
      const client = await connect({ host: '127.0.0.1', port: fake.port, timeoutMs: TIMEOUT, clock: new ManualClock() });
      await assert.rejects(within(client.put(bigFile, 'big.bin')), (e: FerryError) => ['CLOSED'].includes(e.code));
      return fake;
    });
  });

  it('a put whose server stops reading: TIMEOUT at the deadline, not before', async () => {
    await leavesNothing(async () => {
      const fake = await fakeServer((m, socket, peer) => {
        if (m.type === 'PUT') {
          socket.write(encodeMessage({ type: 'PUT_READY', id: m.id, offset: 0, prefixDigest: SHA }));
          peer.expectBody(m.id, m.size);
          socket.pause(); // reads nothing more: the client's writes back up
        } else {
          socket.write(encodeMessage({ type: 'PARTIAL', id: m.id, offset: 0, digest: SHA }));
        }
      });
      const clock = new ManualClock();
      const client = await connect({ host: '127.0.0.1', port: fake.port, timeoutMs: TIMEOUT, clock });
      let sent = 0;
      const call = client.put(bigFile, 'big.bin', { onProgress: (p) => (sent = p.bytes) });
      // Wait until the socket's buffers are full and nothing moves any more.
      let last = -1;
      await eventually(() => (sent > 0 && sent === last) || ((last = sent), false), 10_000, 'the upload to back up');
      clock.advance(TIMEOUT - 1);
      assert.equal(await settledYet(call), false);
      clock.advance(1);
      await assert.rejects(within(call), (e: FerryError) => e.code === 'TIMEOUT');
      assert.ok(sent < 24 * MiB);
      return fake;
    });
  });

  for (const kind of ['an endless stream', 'a stream that stalls (like stdin)']) {
    it(`a chunked upload of ${kind} refused mid-body: TOO_LARGE for it alone, the source destroyed, the body ended`, async () => {
      await leavesNothing(async () => {
        const seen: string[] = [];
        let received = 0;
        const fake = await fakeServer(
          (m, socket, peer) => {
            seen.push(m.type);
            if (m.type === 'PUT') {
              socket.write(encodeMessage({ type: 'PUT_READY', id: m.id, offset: 0, prefixDigest: SHA }));
              peer.expectBody(m.id, 'chunked');
            } else if (m.type === 'PUT_END') {
              seen.push(m.digest.equals(Buffer.alloc(32)) ? 'zero digest' : 'real digest');
            } else if (m.type === 'STAT') {
              socket.write(encodeMessage({ type: 'ENTRY', id: m.id, entry: { name: m.name, kind: 'file', size: 1, mtimeMs: 0, digest: SHA } }));
            }
          },
          {
            onBody: (id, data, socket) => {
              const before = received;
              received += data.length;
              if (before < MiB && received >= MiB) socket.write(encodeMessage({ type: 'ERROR', id, code: WireErrorCode.TOO_LARGE, message: 'over 1 MiB' }));
            },
            onBodyEnd: () => seen.push('body end'),
          },
        );
        const client = await connect({ host: '127.0.0.1', port: fake.port, timeoutMs: TIMEOUT, clock: new ManualClock() });
        let pushed = 0;
        const source = new Readable({
          read() {
            if (kind.startsWith('an endless') || pushed < MiB + 64 * 1024) {
              pushed += 64 * 1024;
              this.push(Buffer.alloc(64 * 1024, 3));
            } // else: stalls, like a terminal nobody types into
          },
        });
        await assert.rejects(within(client.put(source, 'streamed.bin')), (e: FerryError) => e.code === 'TOO_LARGE' && !e.fatal);
        assert.ok(source.destroyed, 'the source was destroyed');
        assert.equal((await within(client.stat('still-usable'))).name, 'still-usable');
        assert.deepEqual(seen, ['PUT', 'body end', 'PUT_END', 'zero digest', 'STAT']);
        await client.close();
        return fake;
      });
    });
  }

  it('destroy() in the middle of a 24 MiB put and a 16 MiB get: both fail CLOSED, nothing left', async () => {
    await leavesNothing(async () => {
      let received = 0;
      const fake = await fakeServer(
        (m, socket, peer) => {
          if (m.type === 'PUT') {
            socket.write(encodeMessage({ type: 'PUT_READY', id: m.id, offset: 0, prefixDigest: SHA }));
            peer.expectBody(m.id, m.size);
          } else if (m.type === 'GET') {
            socket.write(encodeMessage({ type: 'GET_OK', id: m.id, size: BIG, offset: 0, mtimeMs: 0, digest: SHA }));
            socket.write(Buffer.alloc(MiB));
          } else if (m.type === 'PROBE_UPLOAD') {
            socket.write(encodeMessage({ type: 'PARTIAL', id: m.id, offset: 0, digest: SHA }));
          }
        },
        { onBody: (_id, data, socket) => (received += data.length) > 2 * MiB && socket.pause() }, // both stay in flight
      );
      // Two clients: on one connection the GET would wait behind the PUT body (bodies never interleave).
      const uploader = await connect({ host: '127.0.0.1', port: fake.port, timeoutMs: TIMEOUT, clock: new ManualClock() });
      const downloader = await connect({ host: '127.0.0.1', port: fake.port, timeoutMs: TIMEOUT, clock: new ManualClock() });
      let downloaded = 0;
      let uploaded = 0;
      const put = uploader.put(bigFile, 'big.bin', { onProgress: (p) => (uploaded = p.bytes) });
      const get = downloader.get('big.bin', path.join(dir, 'destroyed'), { onProgress: (p) => (downloaded = p.bytes) });
      await eventually(() => uploaded >= 2 * MiB && downloaded >= MiB, 5000, 'both transfers to be under way');
      const outcomes = within(Promise.allSettled([put, get]));
      uploader.destroy();
      downloader.destroy();
      for (const outcome of await outcomes) {
        assert.equal(outcome.status, 'rejected');
        assert.equal((outcome.reason as FerryError).code, 'CLOSED');
      }
      await fs.rm(path.join(dir, 'destroyed.ferry-part'), { force: true });
      return fake;
    });
  });

  it('a request with no answer fails at the deadline; an idle connection has no deadline', async () => {
    await leavesNothing(async () => {
      let answer = false;
      const fake = await fakeServer((m, socket) => {
        if (answer && m.type === 'STAT') socket.write(encodeMessage({ type: 'ENTRY', id: m.id, entry: { name: m.name, kind: 'file', size: 1, mtimeMs: 0, digest: SHA } }));
      });
      const clock = new ManualClock();
      const client = await connect({ host: '127.0.0.1', port: fake.port, timeoutMs: TIMEOUT, clock });
      assert.equal(clock.pending, 0, 'no timer while idle');
      clock.advance(10 * TIMEOUT);
      answer = true;
      assert.equal((await client.stat('a')).name, 'a');
      answer = false;
      const call = client.stat('b');
      await settleIo();
      clock.advance(TIMEOUT - 1);
      assert.equal(await settledYet(call), false);
      clock.advance(1);
      await assert.rejects(within(call), (e: FerryError) => e.code === 'TIMEOUT');
      assert.equal(clock.pending, 0, 'no timer left after the failure');
      return fake;
    });
  });

  it('connect fails at its absolute deadline against a server that never answers HELLO', async () => {
    await leavesNothing(async () => {
      const fake = await fakeServer(() => undefined, { onHello: () => undefined });
      const clock = new ManualClock();
      const call = connect({ host: '127.0.0.1', port: fake.port, timeoutMs: TIMEOUT, clock });
      await eventually(() => fake.open === 1, 3000, 'the connection');
      clock.advance(TIMEOUT);
      await assert.rejects(within(call), (e: FerryError) => e.code === 'TIMEOUT');
      await eventually(() => fake.open === 0, 3000, 'the client to close its socket');
      assert.equal(clock.pending, 0);
      return fake;
    });
  });
});
