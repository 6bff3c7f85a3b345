import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Store } from '../../src/storage/store.js';
import { tempDir } from '../helpers/fixtures.js';

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/**
 * A renamed folder's files keep their digest records: the digest logs move with the folder
 * (and every folder in it). Seen from outside: a file changed behind the store's back, its
 * size, inode and time kept, is still listed with the recorded digest, not hashed again.
 */
describe('store: a renamed folder keeps its files\' digest records', () => {
  let dir: string;
  let root: string;
  let store: Store;
  const original = Buffer.alloc(4096, 1);
  const names = ['a/one.bin', 'a/deep/two.bin', 'a/deep/er/three.bin'];

  before(async () => {
    dir = await tempDir();
    root = path.join(dir, 'root');
    store = await Store.open(root, { fsync: false });
    for (const name of names) {
      const upload = await store.beginUpload(name);
      upload.write(original);
      await upload.commit({ size: original.length });
    }
  });
  after(async () => {
    await store.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** Overwrites a stored file's bytes in place, keeping its size, inode and modification time. */
  async function changeBehindTheStore(name: string): Promise<void> {
    const file = path.join(root, name);
    const { mtimeMs } = await fs.stat(file);
    const handle = await fs.open(file, 'r+');
    await handle.write(Buffer.alloc(original.length, 2), 0, original.length, 0);
    await handle.close();
    // Mid-millisecond: seconds as a double land in the same millisecond (records keep whole ones).
    const sameMs = (Math.trunc(mtimeMs) + 0.5) / 1000;
    await fs.utimes(file, sameMs, sameMs);
  }

  it('lists the moved files with their records, under the new names, in every sub-folder', async () => {
    // A folder of the new name existed before and was removed: its log must not be taken for the moved one's.
    const upload = await store.beginUpload('z/deep/two.bin');
    upload.write(Buffer.alloc(4096, 9));
    await upload.commit({ size: 4096 });
    assert.equal(await store.removeTree('z'), 1);

    assert.deepEqual((await store.rename('a', 'z')).kind, 'folder');
    for (const name of names) await changeBehindTheStore(name.replace(/^a\//, 'z/'));
    const listed = new Map((await store.list('z', true)).map((e) => [e.name, e.digest.toString('hex')]));
    for (const name of names) {
      const moved = name.replace(/^a\//, 'z/');
      assert.equal(listed.get(moved), sha256(original), `${moved}: the record moved with its folder (not hashed again)`);
    }
    assert.deepEqual(await store.list('a', true), []);
  });
});
