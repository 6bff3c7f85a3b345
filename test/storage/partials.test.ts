import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { FerryError } from '../../src/errors.js';
import { Store, type StoreOptions } from '../../src/storage/store.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { randomData, tempDir } from '../helpers/fixtures.js';

const HOUR = 3600_000;

/** Starts an upload of `size` declared bytes, writes `held` of them, and loses the connection. */
async function interrupt(store: Store, name: string, size: number, held: number): Promise<void> {
  const upload = await store.beginUpload(name, { size });
  upload.write(randomData(held));
  await upload.abort(true);
}

async function withStore(options: StoreOptions, test: (store: Store, root: string) => Promise<void>): Promise<void> {
  const root = await tempDir();
  const store = await Store.open(root, { fsync: false, ...options });
  try {
    await test(store, root);
  } finally {
    await store.close();
    await fs.rm(root, { recursive: true, force: true });
  }
}

async function partialFiles(root: string): Promise<string[]> {
  return (await fs.readdir(path.join(root, '.ferry', 'partial'))).filter((f) => !f.endsWith('.name'));
}

describe('kept partial uploads (issue #9)', () => {
  it('lists them and expires them while running, on the store clock', async () => {
    const clock = new ManualClock();
    await withStore({ clock, partialTtlMs: HOUR }, async (store, root) => {
      await interrupt(store, 'a.bin', 1000, 300);
      clock.advance(HOUR / 2);
      await interrupt(store, 'b.bin', 2000, 700);
      const listed = store.partials.list();
      assert.deepEqual(listed.map(({ name, size, held }) => ({ name, size, held })), [
        { name: 'a.bin', size: 1000, held: 300 },
        { name: 'b.bin', size: 2000, held: 700 },
      ]);
      assert.ok(Math.abs(listed[0]!.expiresAt - (Date.now() + HOUR / 2)) < 5000);
      assert.equal(store.space.partials, 1000);
      clock.advance(HOUR / 2);
      await store.partials.settled();
      assert.deepEqual(store.partials.list().map((p) => p.name), ['b.bin']);
      assert.equal((await partialFiles(root)).length, 1);
      assert.equal(store.space.partials, 700);
      clock.advance(HOUR / 2);
      await store.partials.settled();
      assert.deepEqual(store.partials.list(), []);
      assert.deepEqual(await partialFiles(root), []);
      assert.equal(store.space.partials, 0);
      assert.equal(clock.pending, 0, 'no timer is left armed with nothing to expire');
    });
  });

  it('keeps at most maxPartials, evicting the oldest first', async () => {
    await withStore({ maxPartials: 3 }, async (store, root) => {
      for (let i = 0; i < 6; i++) await interrupt(store, `p${i}.bin`, 100, 10);
      await store.partials.settled();
      assert.deepEqual(store.partials.list().map((p) => p.name), ['p3.bin', 'p4.bin', 'p5.bin']);
      assert.equal((await partialFiles(root)).length, 3);
      assert.equal(store.space.partials, 30);
    });
  });

  it('keeps at most maxPartialBytes, evicting the oldest first, and never one alone over it', async () => {
    await withStore({ maxPartialBytes: 1000 }, async (store) => {
      await interrupt(store, 'a', 5000, 400);
      await interrupt(store, 'b', 5000, 400);
      await interrupt(store, 'c', 5000, 400);
      assert.deepEqual(store.partials.list().map((p) => p.name), ['b', 'c']);
      await interrupt(store, 'huge', 5000, 1001);
      assert.deepEqual(store.partials.list().map((p) => p.name), ['b', 'c']);
      assert.equal(store.space.partials, 800);
    });
  });

  it('counts partials in the quota and evicts them before refusing a fresh upload', async () => {
    await withStore({ quota: 10_000, maxPartialBytes: 10_000 }, async (store) => {
      for (const name of ['x', 'y', 'z']) await interrupt(store, name, 3000, 3000 - 1);
      assert.equal(store.space.partials, 3 * 2999);
      const upload = await store.beginUpload('fresh.bin', { size: 5000 });
      assert.deepEqual(store.partials.list().map((p) => p.name), ['z'], 'the two oldest made room');
      upload.write(randomData(5000));
      await upload.commit({ size: 5000 });
      assert.ok(store.space.stored + store.space.partials <= 10_000);
      await assert.rejects(store.beginUpload('too-big.bin', { size: 10_001 }), (e: FerryError) => e.code === 'QUOTA');
    });
  });

  it('resumes a kept partial, moving its bytes from partials to the upload', async () => {
    await withStore({ quota: 10_000 }, async (store) => {
      const data = randomData(4000);
      const first = await store.beginUpload('r.bin', { size: 4000 });
      first.write(data.subarray(0, 1500));
      await first.abort(true);
      assert.equal((await store.probeUpload('r.bin', 4000)).offset, 1500);
      const upload = await store.beginUpload('r.bin', { size: 4000, resume: true });
      assert.equal(upload.offset, 1500);
      assert.deepEqual(store.space, { quota: 10_000, stored: 0, partials: 0, reserved: 4000 });
      upload.write(data.subarray(1500));
      await upload.commit({ size: 4000 });
      assert.deepEqual(store.space, { quota: 10_000, stored: 4000, partials: 0, reserved: 0 });
    });
  });

  it('knows its partials by name after a restart, and ages them from their files', async () => {
    const root = await tempDir();
    try {
      const first = await Store.open(root, { fsync: false });
      await interrupt(first, 'dir/kept.bin', 9000, 1234);
      await first.close();
      const clock = new ManualClock();
      const second = await Store.open(root, { fsync: false, clock, partialTtlMs: HOUR });
      assert.deepEqual(second.partials.list().map(({ name, size, held }) => ({ name, size, held })), [{ name: 'dir/kept.bin', size: 9000, held: 1234 }]);
      assert.equal(second.space.partials, 1234);
      clock.advance(HOUR);
      await second.partials.settled();
      assert.deepEqual(await partialFiles(root), []);
      await second.close();
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });
});
