import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect } from '../../src/index.js';
import { digestOf } from '../../src/io/digest.js';
import type { Message } from '../../src/protocol/index.js';
import { batchSlots, MAX_BATCH_BYTES_IN_FLIGHT } from '../../src/server/batches.js';
import { randomData, startServer, type TestServer } from '../helpers/fixtures.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { RawPeer } from '../helpers/raw-peer.js';

const turn = (ms = 20): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Bytes of files in each batch sent: 15 × 4,000. */
const BATCH_BYTES = 60_000;
const BATCHES = 30;

function batch(id: number): Message {
  const files = Array.from({ length: BATCH_BYTES / 4000 }, (_, k) => {
    const data = randomData(4000);
    return { name: `budget/batch-${id}-${k}.bin`, digest: digestOf('sha256', data), data };
  });
  return { type: 'PUT_BATCH', id, flags: 0, files };
}

/**
 * Issue 12: the file bytes of PUT_BATCHes one connection has in progress are bounded: past
 * MAX_BATCH_BYTES_IN_FLIGHT the server stops reading the connection, and reads on once they
 * are stored. Seen through the server's one open-file slot, held by a download nobody reads:
 * each batch the server has read waits for that slot with a timer on the ManualClock.
 */
describe('PUT_BATCH bytes in progress per connection', () => {
  let clock: ManualClock;
  let server: TestServer;

  before(async () => {
    clock = new ManualClock();
    server = await startServer({ clock, maxOpenFiles: 1 });
    const client = await connect(server.address);
    await client.put(randomData(8 * 1024 * 1024), 'big.bin');
    await client.close();
  });
  after(() => server.stop());

  it(`stops reading a connection's batches at ${MAX_BATCH_BYTES_IN_FLIGHT} bytes in progress, and reads on as they are stored`, async () => {
    const holder = await RawPeer.connect(server.address.port);
    holder.socket.pause();
    holder.send({ type: 'GET', id: 1, name: 'big.bin', offset: 0 }); // takes the one slot and keeps it
    await turn(300);
    const peer = await RawPeer.connect(server.address.port, { version: 6 });
    await turn(50);
    const timersBefore = clock.pending;
    for (let id = 1; id <= BATCHES; id++) peer.send(batch(id));
    const read = Math.ceil(MAX_BATCH_BYTES_IN_FLIGHT / BATCH_BYTES); // the batch that reaches the budget is read too
    assert.ok(read < BATCHES, 'the test sends more than the budget');
    // Every batch read waits for the slot (a timer each); the rest stay unread.
    for (let i = 0; i < 50 && clock.pending - timersBefore < read; i++) await turn();
    await turn(300);
    assert.equal(clock.pending - timersBefore, read, `batches waiting for a file slot, of ${BATCHES} sent`);
    // The slot comes free: every batch is stored in turn, the connection read on as they are.
    holder.destroy();
    for (let id = 1; id <= BATCHES; id++) {
      const reply = await peer.waitFor((m) => m.id === id, 10_000);
      assert.equal(reply.type, 'BATCH_RESULTS', `batch ${id}: ${JSON.stringify(reply)}`);
      if (reply.type === 'BATCH_RESULTS') assert.ok(reply.results.every((r) => r.status === 'stored'));
    }
    peer.destroy();
  });
});

/**
 * A durable batch holds temporaries open (one window syncing, the next written): it takes a
 * slot of the server's open-file budget for each, so concurrent batches cannot push the
 * process into EMFILE. Seen with a budget of 2 and one slot held by a download nobody reads.
 */
describe('PUT_BATCH takes a slot per temporary it may hold open', () => {
  it('64 with fsync, one without, and never more than an eighth of the budget (at least 2)', () => {
    assert.equal(batchSlots(64, 4096), 64);
    assert.equal(batchSlots(64, 256), 32);
    assert.equal(batchSlots(64, 16), 2);
    assert.equal(batchSlots(64, 2), 2);
    assert.equal(batchSlots(64, 1), 1, 'never more than the whole budget');
    assert.equal(batchSlots(1, 4096), 1);
  });

  for (const fsync of [true, false]) {
    it(fsync ? 'with fsync: both slots of a budget of 2, so it waits while another transfer holds one' : 'without fsync: one, so it goes ahead beside another transfer', async () => {
      const clock = new ManualClock();
      const server = await startServer({ clock, maxOpenFiles: 2, fsync });
      try {
        const client = await connect(server.address);
        await client.put(randomData(8 * 1024 * 1024), 'big.bin');
        await client.close();
        const holder = await RawPeer.connect(server.address.port);
        holder.socket.pause();
        holder.send({ type: 'GET', id: 1, name: 'big.bin', offset: 0 }); // takes one slot and keeps it
        await turn(300);
        assert.equal(server.server.files.inUse, 1);
        const peer = await RawPeer.connect(server.address.port, { version: 6 });
        await turn(50);
        const timersBefore = clock.pending;
        peer.send(batch(1));
        if (fsync) {
          for (let i = 0; i < 50 && clock.pending === timersBefore; i++) await turn();
          await turn(100);
          assert.equal(clock.pending - timersBefore, 1, 'the batch waits for its slots (a deadline timer)');
          assert.equal(server.server.files.inUse, 1);
          holder.destroy();
        }
        const reply = await peer.waitFor((m) => m.id === 1, 10_000);
        assert.equal(reply.type, 'BATCH_RESULTS', JSON.stringify(reply));
        if (reply.type === 'BATCH_RESULTS') assert.ok(reply.results.every((r) => r.status === 'stored'));
        holder.destroy();
        peer.destroy();
      } finally {
        await server.stop();
      }
    });
  }
});
