import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FerryError } from '../../src/errors.js';
import { Store } from '../../src/storage/store.js';
import { randomData, tempDir, temporaries, visibleTree } from '../helpers/fixtures.js';

const MiB = 1024 * 1024;

/** Streams `data` into an upload in 256 KiB chunks, pausing whenever the sink asks. */
async function send(store: Store, name: string, data: Buffer): Promise<Awaited<ReturnType<Store['beginUpload']>>> {
  const upload = await store.beginUpload(name, { size: data.length });
  for (let at = 0; at < data.length; at += MiB / 4) {
    if (!upload.write(data.subarray(at, at + MiB / 4))) await new Promise<void>((resolve) => upload.sink.onDrain(resolve));
  }
  return upload;
}

describe('durable uploads sync while writing (issue 11)', () => {
  let parent: string;
  const data = randomData(40 * MiB);

  before(async () => {
    parent = await tempDir();
  });
  after(async () => {
    await fs.rm(parent, { recursive: true, force: true });
  });

  it('a 40 MiB upload to an fsync store is synced in the background before its commit', async () => {
    const store = await Store.open(path.join(parent, 'durable'));
    try {
      const upload = await send(store, 'big.bin', data);
      await upload.commit({ size: data.length });
      // 40 MiB crosses the first sync point: a sync started and finished before the commit's fsync.
      assert.ok(upload.sink.backgroundSyncs >= 1, `${upload.sink.backgroundSyncs} background syncs`);
      assert.deepEqual(await fs.readFile(path.join(parent, 'durable', 'big.bin')), data);
    } finally {
      await store.close();
    }
  });

  it('a store without fsync never syncs in the background', async () => {
    const store = await Store.open(path.join(parent, 'fast'), { fsync: false });
    try {
      const upload = await send(store, 'big.bin', data);
      await upload.commit({ size: data.length });
      assert.equal(upload.sink.backgroundSyncs, 0);
    } finally {
      await store.close();
    }
  });

  it('a failed background sync fails the commit and publishes nothing', async () => {
    const root = path.join(parent, 'failing');
    const store = await Store.open(root);
    // Every file handle's fdatasync reports a lost writeback; fsync itself still succeeds, as
    // it may on Linux once the error was reported: only the background sync can catch it.
    const probe = await fs.open(path.join(parent, 'probe'), 'w');
    const handleType = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> };
    await probe.close();
    const realDatasync = handleType.datasync;
    handleType.datasync = () => Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, fdatasync'), { code: 'ENOSPC' }));
    try {
      const upload = await send(store, 'big.bin', data);
      await assert.rejects(upload.commit({ size: data.length }), (e: FerryError) => e.code === 'NO_SPACE');
      assert.deepEqual(await visibleTree(root), []);
      assert.deepEqual(await temporaries(root), []);
    } finally {
      handleType.datasync = realDatasync;
      await store.close();
    }
  });
});
