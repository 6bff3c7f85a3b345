import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { FerryError } from '../../src/errors.js';
import { Store } from '../../src/storage/store.js';
import { randomData, tempDir } from '../helpers/fixtures.js';

/** Bytes of the stored files, walked afresh (everything outside .ferry/). */
async function walkedBytes(root: string): Promise<number> {
  let total = 0;
  for (const entry of await fs.readdir(root, { withFileTypes: true, recursive: true })) {
    const full = path.join(entry.parentPath, entry.name);
    if (path.relative(root, full).split(path.sep)[0] === '.ferry' || !entry.isFile()) continue;
    total += (await fs.lstat(full)).size;
  }
  return total;
}

async function put(store: Store, name: string, data: Buffer, options = {}): Promise<void> {
  const upload = await store.beginUpload(name, { size: data.length, ...options });
  upload.write(data);
  await upload.commit({ size: data.length });
}

describe('quota as a running total (issue #9)', () => {
  it('lets exactly as many concurrent uploads succeed as fit, and never goes over', async () => {
    const root = await tempDir();
    const store = await Store.open(root, { quota: 10_000, fsync: false });
    try {
      const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => put(store, `f${i}.bin`, randomData(3000))));
      const won = results.filter((r) => r.status === 'fulfilled').length;
      assert.equal(won, 3);
      for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as FerryError).code, 'QUOTA');
      assert.equal(await walkedBytes(store.root), 9000);
      assert.deepEqual(store.space, { quota: 10_000, stored: 9000, partials: 0, reserved: 0 });
    } finally {
      await store.close();
      await fs.rm(root, { recursive: true, force: true });
    }
  });

  it('reserves as chunked uploads grow, refusing the chunk that would not fit', async () => {
    const root = await tempDir();
    const store = await Store.open(root, { quota: 10_000, fsync: false });
    try {
      const uploads = await Promise.all(Array.from({ length: 4 }, (_, i) => store.beginUpload(`c${i}.bin`)));
      let refused = 0;
      for (let round = 0; round < 4; round++) {
        for (const upload of uploads) {
          try {
            upload.write(randomData(1000));
          } catch (error) {
            assert.equal((error as FerryError).code, 'QUOTA');
            refused++;
          }
        }
        assert.ok(store.space.reserved <= 10_000);
      }
      assert.equal(refused, 6); // 10 chunks of 1000 fit, 6 do not
      await Promise.all(uploads.map((u) => u.abort()));
      assert.deepEqual(store.space, { quota: 10_000, stored: 0, partials: 0, reserved: 0 });
    } finally {
      await store.close();
      await fs.rm(root, { recursive: true, force: true });
    }
  });

  it('follows commits, replacements, removals and folder removals, equal to a fresh walk', async () => {
    const root = await tempDir();
    await fs.writeFile(path.join(root, 'by-hand.txt'), 'x'.repeat(500)); // counted at open
    const store = await Store.open(root, { quota: 100_000, fsync: false });
    try {
      assert.equal(store.space.stored, 500);
      await put(store, 'a/one.bin', randomData(4000));
      await put(store, 'a/b/two.bin', randomData(3000));
      await put(store, 'three.bin', randomData(2000));
      await put(store, 'three.bin', randomData(700), { overwrite: true });
      await put(store, 'three.bin', randomData(50), { rename: true });
      assert.equal(store.space.stored, await walkedBytes(store.root));
      await store.remove('a/one.bin');
      assert.equal(store.space.stored, await walkedBytes(store.root));
      assert.equal(await store.removeTree('a'), 1);
      assert.equal(store.space.stored, await walkedBytes(store.root));
      assert.equal(store.space.stored, 500 + 700 + 50);
      const failed = await store.beginUpload('bad.bin', { size: 10 });
      failed.write(randomData(5));
      await assert.rejects(failed.commit({ size: 10 }), (e: FerryError) => e.code === 'INTEGRITY');
      assert.deepEqual(store.space, { quota: 100_000, stored: 1250, partials: 0, reserved: 0 });
    } finally {
      await store.close();
      await fs.rm(root, { recursive: true, force: true });
    }
  });
});
