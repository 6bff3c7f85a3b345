import assert from 'node:assert/strict';
import { readFileSync, promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from '../../src/index.js';
import { encodeMessage, PROTOCOL_VERSION } from '../../src/protocol/index.js';
import { startServeProcess, type ServeProcess } from '../helpers/cli.js';

/**
 * Issue 9: a client that pipelines requests and never reads their replies must not grow the
 * server's memory. Measured on a real `ferry serve` child (its VmRSS), which on the old
 * engine grew by ~120 MiB for 100,000 unread STATs and ~800 MiB for 1.25 MiB of LISTs.
 */

function rssOf(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(match, 'VmRSS readable');
  return Number(match[1]) * 1024;
}

/** Waits until the server's RSS has not grown for a while (it has done what it will do). */
async function settledRss(pid: number): Promise<number> {
  let last = rssOf(pid);
  let stableSince = Date.now();
  const deadline = Date.now() + 15_000;
  while (Date.now() - stableSince < 1000 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const now = rssOf(pid);
    if (now > last + 256 * 1024) stableSince = Date.now();
    last = Math.max(last, now);
  }
  return last;
}

/** Connects, says HELLO, writes `requests` and never reads a byte; returns the socket. */
async function pipelineWithoutReading(port: number, requests: Buffer): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port });
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => undefined);
  socket.pause(); // never read: replies pile up in the kernel, then in the server
  socket.write(encodeMessage({ type: 'HELLO', id: 0, version: PROTOCOL_VERSION, clientName: 'no-reader', flags: 0 }));
  socket.write(requests);
  return socket;
}

const MiB = 1024 * 1024;

describe('replies a client does not read are bounded', () => {
  let work: string;
  let server: ServeProcess;

  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'ferry-memory-'));
    const root = path.join(work, 'store');
    // 2,000 small files placed by hand: each LIST reply is ~130 KiB.
    for (let folder = 0; folder < 20; folder++) {
      await fs.mkdir(path.join(root, `f${folder}`), { recursive: true });
      await Promise.all(Array.from({ length: 100 }, (_, i) => fs.writeFile(path.join(root, `f${folder}`, `file-${i}.txt`), `file ${i}\n`)));
    }
    server = await startServeProcess(['--root', root]);
    // Warm up (digests of the 2,000 files, code paths) so the baseline is fair.
    const client = await connect({ host: '127.0.0.1', port: server.port });
    assert.equal((await client.list('', { recursive: true })).length, 2000);
    await client.close();
  });
  after(async () => {
    await server.stop();
    await fs.rm(work, { recursive: true, force: true });
  });

  it('100,000 pipelined STATs that are never read grow the server by less than 40 MiB', async (t) => {
    const before = await settledRss(server.child.pid!);
    const stats = Buffer.concat(Array.from({ length: 100_000 }, (_, i) => encodeMessage({ type: 'STAT', id: i + 1, name: 'f1/file-1.txt' })));
    const socket = await pipelineWithoutReading(server.port, stats);
    const grown = (await settledRss(server.child.pid!)) - before;
    socket.destroy();
    t.diagnostic(`server RSS grew by ${(grown / MiB).toFixed(1)} MiB`);
    assert.ok(grown < 40 * MiB, `server RSS grew by ${(grown / MiB).toFixed(1)} MiB`);
  });

  it('1.25 MiB of pipelined LISTs over 2,000 files, never read, grow the server by less than 40 MiB', async (t) => {
    const before = await settledRss(server.child.pid!);
    const one = encodeMessage({ type: 'LIST', id: 1, prefix: '', flags: 1 });
    const count = Math.floor((1.25 * MiB) / one.length);
    const lists = Buffer.concat(Array.from({ length: count }, (_, i) => encodeMessage({ type: 'LIST', id: i + 1, prefix: '', flags: 1 })));
    const socket = await pipelineWithoutReading(server.port, lists);
    const grown = (await settledRss(server.child.pid!)) - before;
    socket.destroy();
    t.diagnostic(`server RSS grew by ${(grown / MiB).toFixed(1)} MiB`);
    assert.ok(grown < 40 * MiB, `server RSS grew by ${(grown / MiB).toFixed(1)} MiB`);
  });
});
