import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { Store } from '../../src/storage/store.js';
import { randomData, tempDir } from '../helpers/fixtures.js';

/** Runs `test` on a fresh tmpfs mounted with `options`; skips where mounting needs privileges we lack. */
async function onTmpfs(t: TestContext, options: string, test: (mount: string) => Promise<void>): Promise<void> {
  const mount = await tempDir('ferry-small-disk-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', mount], { stdio: 'ignore' });
  } catch {
    await fs.rm(mount, { recursive: true, force: true });
    t.skip('cannot mount a small tmpfs here (needs root)');
    return;
  }
  try {
    await test(mount);
  } finally {
    execFileSync('umount', [mount], { stdio: 'ignore' });
    await fs.rm(mount, { recursive: true, force: true });
  }
}

/** An upload of `size` declared bytes cut after `held`; refusals (no room) count as attempts too. */
async function interrupt(store: Store, name: string, size: number, held: number): Promise<void> {
  try {
    const upload = await store.beginUpload(name, { size });
    upload.write(randomData(held));
    await upload.abort(true);
  } catch {
    // refused for lack of room: fine, the point is what it leaves behind
  }
}

async function putWhole(store: Store, name: string, data: Buffer): Promise<void> {
  const upload = await store.beginUpload(name, { size: data.length });
  upload.write(data);
  await upload.commit({ size: data.length });
}

describe('kept partials never starve uploads (issue #9)', () => {
  it('interrupted uploads cannot fill a small disk: a fresh upload evicts them', async (t) => {
    await onTmpfs(t, 'size=2m', async (mount) => {
      const store = await Store.open(path.join(mount, 'root'));
      try {
        for (let i = 0; i < 28; i++) await interrupt(store, `junk-${i}.bin`, 300_000, 200_000);
        assert.ok(store.space.partials <= store.partials.limits.maxBytes);
        const data = randomData(1_200_000);
        await putWhole(store, 'legit.bin', data);
        assert.ok((await fs.readFile(path.join(store.root, 'legit.bin'))).equals(data));
      } finally {
        await store.close();
      }
    });
  });

  it('one-byte partials cannot use up the inodes: a fresh upload evicts them', async (t) => {
    await onTmpfs(t, 'size=4m,nr_inodes=120', async (mount) => {
      const store = await Store.open(path.join(mount, 'root'));
      try {
        for (let i = 0; i < 395; i++) await interrupt(store, `tiny-${i}.bin`, 10, 1);
        await putWhole(store, 'after/legit.txt', Buffer.from('still works'));
        assert.equal(await fs.readFile(path.join(store.root, 'after', 'legit.txt'), 'utf8'), 'still works');
      } finally {
        await store.close();
      }
    });
  });
});
