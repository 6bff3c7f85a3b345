import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connect, type FerryClient } from '../../src/index.js';
import { RequestIds } from '../../src/client/request-ids.js';
import { encodeMessage } from '../../src/protocol/index.js';
import { startFakeServer } from '../helpers/fake-server.js';

/**
 * Request ids (PROTOCOL.md §3): never 0 after HELLO, unique among requests in progress. After
 * 4294967295 the client wraps to 1 and skips every id still in use.
 */

const LAST = 0xffffffff;

/** Points the allocator at `next` (the u32 space is too large to walk in a test). */
function jumpTo(ids: RequestIds, next: number): void {
  (ids as unknown as { next: number }).next = next;
}

describe('request ids', () => {
  it('wrap from 4294967295 to 1, never 0, skipping ids in use', () => {
    const ids = new RequestIds(LAST - 1);
    assert.deepEqual([ids.take(), ids.take(), ids.take()], [LAST - 1, LAST, 1]);
    ids.release(LAST - 1);
    jumpTo(ids, LAST - 1);
    // LAST and 1 are still in use: skipped.
    assert.deepEqual([ids.take(), ids.take()], [LAST - 1, 2]);
    ids.release(1);
    jumpTo(ids, 1);
    assert.equal(ids.take(), 1);
    assert.equal(ids.size, 4);
    assert.throws(() => new RequestIds(0), RangeError);
  });

  it('on the wire: after the wrap the client skips the id of a request still waiting for its answer', async () => {
    const seen: number[] = [];
    let hold: (() => void) | undefined;
    const fake = await startFakeServer((m, socket) => {
      if (m.type !== 'STAT') return;
      seen.push(m.id);
      const answer = (): void => void socket.write(encodeMessage({ type: 'ENTRY', id: m.id, entry: { name: m.name, kind: 'file', size: m.id, mtimeMs: 0, digest: Buffer.alloc(32) } }));
      if (m.name === 'held') hold = answer;
      else answer();
    });
    const client = await connect({ host: '127.0.0.1', port: fake.port });
    try {
      const ids = (client as unknown as { connection: { ids: RequestIds } }).connection.ids;
      const held = client.stat('held'); // id 1, answered last
      jumpTo(ids, LAST);
      const names = ['a', 'b', 'c'];
      const entries = await Promise.all(names.map((n) => client.stat(n)));
      assert.deepEqual(entries.map((e) => e.name), names);
      assert.deepEqual(seen, [1, LAST, 2, 3]);
      hold!();
      assert.equal((await held).name, 'held');
    } finally {
      await (client as FerryClient).close();
      await fake.close();
    }
  });
});
