import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, type Entry, type FerryError } from '../../src/index.js';
import { encodeMessage, type WireEntry } from '../../src/protocol/index.js';
import { startFakeServer } from '../helpers/fake-server.js';
import { eventually, startServer, type TestServer } from '../helpers/fixtures.js';
import { ManualClock } from '../helpers/manual-clock.js';

const entry = (name: string): WireEntry => ({ name, kind: 'file', size: 1, mtimeMs: 0, digest: Buffer.alloc(32, 7) });

/**
 * A fake server whose LIST reply is a pump of 64 KiB ENTRIES frames, honouring TCP
 * backpressure: the first listing on the connection pumps `limit` bytes, later ones a megabyte
 * each. `written` tells how far they got, all listings together. Each listing counts its own
 * bytes: a first pump still waiting for 'drain' when a later listing starts must not eat into
 * that listing's megabyte (which had made the later listing end after one frame, now and then).
 */
async function pumpingServer(limit: number): Promise<{ port: number; written: () => number; close: () => Promise<void> }> {
  const names = Array.from({ length: 300 }, (_, i) => `${'n'.repeat(100)}/${String(i).padStart(50, '0')}`);
  let written = 0;
  let lists = 0;
  const fake = await startFakeServer((m, socket: net.Socket) => {
    if (m.type !== 'LIST') return;
    const budget = lists++ === 0 ? limit : 1024 * 1024;
    let sent = 0;
    const frame = encodeMessage({ type: 'ENTRIES', id: m.id, more: true, entries: names.map(entry) });
    const pump = (): void => {
      while (sent < budget && !socket.destroyed) {
        sent += frame.length;
        written += frame.length;
        if (!socket.write(frame)) return void socket.once('drain', pump);
      }
      if (!socket.destroyed) socket.write(encodeMessage({ type: 'ENTRIES', id: m.id, more: false, entries: [] }));
    };
    pump();
  });
  return { port: fake.port, written: () => written, close: () => fake.close() };
}

/** Waits until the pump stops making progress (the client stopped reading). */
async function heldBack(fake: { written: () => number }): Promise<void> {
  let last = -1;
  for (let round = 0; round < 50; round++) {
    const now = fake.written();
    if (now === last) return;
    last = now;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`the server was never held back (${fake.written()} bytes written)`);
}

describe('streamed listings (client.listStream, ferry ls)', () => {
  let server: TestServer;
  const FILES = 3000;

  before(async () => {
    server = await startServer();
    // Placed by hand: the server hashes them on the first listing, then lists from records.
    for (let folder = 0; folder < 3; folder++) {
      mkdirSync(path.join(server.root, `f${folder}`));
      for (let i = 0; i < FILES / 3; i++) writeFileSync(path.join(server.root, `f${folder}`, `${String(i).padStart(4, '0')}.txt`), `${folder}/${i}`);
    }
  });
  after(() => server.stop());

  it('yields the same entries, in the same order, as list()', async () => {
    const client = await connect(server.address);
    try {
      const whole = await client.list();
      const streamed: Entry[] = [];
      let batches = 0;
      for await (const batch of client.listStream()) {
        batches++;
        streamed.push(...batch);
      }
      assert.equal(whole.length, FILES);
      assert.ok(batches >= 3, `${batches} batches`);
      assert.deepEqual(streamed, whole);
      const folder: Entry[] = [];
      for await (const batch of client.listStream('f1', { recursive: false })) folder.push(...batch);
      assert.deepEqual(folder, await client.list('f1', { recursive: false }));
    } finally {
      await client.close();
    }
  });

  it('is not held to the listing cap that list() enforces: the consumer bounds its memory', async () => {
    const client = await connect({ ...server.address, maxListingBytes: 64 * 1024 });
    try {
      await assert.rejects(client.list(), (e: FerryError) => e.code === 'PROTOCOL' && /listing over/.test(e.message));
    } finally {
      client.destroy();
    }
    const again = await connect({ ...server.address, maxListingBytes: 64 * 1024 });
    try {
      let count = 0;
      for await (const batch of again.listStream()) count += batch.length;
      assert.equal(count, FILES);
    } finally {
      await again.close();
    }
  });

  it('stops reading while the consumer does not pull, and a break leaves the connection usable', async () => {
    const fake = await pumpingServer(64 * 1024 * 1024);
    const client = await connect({ host: '127.0.0.1', port: fake.port, timeoutMs: 10_000 });
    try {
      const listing = client.listStream();
      const first = await listing.next();
      assert.equal(first.done, false);
      // Not pulling: the server gets as far as the few frames held here plus the kernel's buffers.
      await heldBack(fake);
      assert.ok(fake.written() < 24 * 1024 * 1024, `the server wrote ${fake.written()} bytes to a consumer that took one batch`);
      await listing.return!();
      // The rest is read and dropped; the pump finishes and the connection is still in order.
      await eventually(() => fake.written() >= 64 * 1024 * 1024, 10_000, 'the rest to be drained');
      let count = 0;
      for await (const batch of client.listStream()) {
        count += batch.length;
        if (count > 600) break;
      }
      assert.ok(count > 600);
    } finally {
      client.destroy();
      await fake.close();
    }
  });

  it('a consumer that pauses longer than --timeout is not mistaken for a silent server', async () => {
    const clock = new ManualClock();
    const fake = await pumpingServer(8 * 1024 * 1024);
    const client = await connect({ host: '127.0.0.1', port: fake.port, timeoutMs: 1000, clock });
    try {
      const listing = client.listStream();
      assert.equal((await listing.next()).done, false);
      await heldBack(fake); // the reader filled up and paused
      clock.advance(5000);
      let count = 0;
      for (;;) {
        const next = await listing.next();
        if (next.done) break;
        count += next.value.length;
      }
      assert.ok(count > 10_000, `${count} entries after the pause`);
    } finally {
      client.destroy();
      await fake.close();
    }
  });
});
