import assert from 'node:assert/strict';
import fsCallbacks, { promises as fs } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FerryError } from '../../src/errors.js';
import { digestOf } from '../../src/io/digest.js';
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

type SyncCallback = (error: NodeJS.ErrnoException | null) => void;

/** Descriptors this process holds on files in a store's temporaries folder (Linux: /proc/self/fd). */
function openTemporaries(root: string): number {
  const tmp = path.join(root, '.ferry', 'tmp') + path.sep;
  let count = 0;
  for (const fd of fsCallbacks.readdirSync('/proc/self/fd')) {
    try {
      if (fsCallbacks.readlinkSync(`/proc/self/fd/${fd}`).startsWith(tmp)) count++;
    } catch {
      // closed meanwhile (the readdir's own descriptor)
    }
  }
  return count;
}
const canSeeDescriptors = fsCallbacks.existsSync('/proc/self/fd');

/**
 * Replaces one of node:fs's functions (which the batch path imports by name) while `body` runs;
 * `make` gets the real one to call on.
 */
async function withFsPatched<K extends 'fdatasync' | 'closeSync'>(name: K, make: (real: (typeof fsCallbacks)[K]) => (typeof fsCallbacks)[K], body: () => Promise<void>): Promise<void> {
  const real = fsCallbacks[name];
  fsCallbacks[name] = make(real);
  syncBuiltinESMExports();
  try {
    await body();
  } finally {
    fsCallbacks[name] = real;
    syncBuiltinESMExports();
  }
}

/** withFsPatched for fdatasync: `fake` gets each call's descriptor and the real sync's completion. */
function withFdatasync(fake: (fd: number, done: SyncCallback, real: typeof fsCallbacks.fdatasync) => void, body: () => Promise<void>): Promise<void> {
  return withFsPatched('fdatasync', (real) => ((fd: number, done: SyncCallback) => fake(fd, done, real)) as typeof fsCallbacks.fdatasync, body);
}

/**
 * Runs `body` with node:fs's fdatasync counted: the calls, the most in flight at once, and the
 * most temporaries of `root` held open when a sync completed (by then the next window has
 * been written, if it may be).
 */
async function countingSyncs(root: string, body: () => Promise<void>): Promise<{ calls: number; most: number; open: number }> {
  const seen = { calls: 0, most: 0, open: 0 };
  let inFlight = 0;
  await withFdatasync((fd, done, real) => {
    seen.calls++;
    seen.most = Math.max(seen.most, ++inFlight);
    real(fd, (error) => {
      if (canSeeDescriptors) seen.open = Math.max(seen.open, openTemporaries(root));
      inFlight--;
      done(error);
    });
  }, body);
  return seen;
}

describe('durable batches sync their temporaries in a bounded window', () => {
  let parent: string;
  const files = Array.from({ length: 100 }, (_, i) => {
    const data = randomData(1024 + i);
    return { name: `tree/f${String(i).padStart(3, '0')}.bin`, data, digest: digestOf('sha256', data) };
  });

  before(async () => {
    parent = await tempDir();
  });
  after(async () => {
    await fs.rm(parent, { recursive: true, force: true });
  });

  it('syncs every file, a window of syncs at once and never more', async () => {
    const root = path.join(parent, 'window');
    const store = await Store.open(root);
    try {
      const { calls, most } = await countingSyncs(root, async () => {
        const outcomes = await store.storeBatch(files);
        assert.deepEqual(
          outcomes.map((o) => o.status),
          files.map(() => 'stored'),
        );
      });
      assert.equal(calls, files.length, 'one sync per file');
      assert.ok(most > 1, `the syncs overlapped (${most} at most at once)`);
      assert.ok(most <= 32, `${most} syncs at once`);
      for (const file of files) assert.deepEqual(await fs.readFile(path.join(root, file.name)), file.data);
      assert.deepEqual(await temporaries(root), []);
    } finally {
      await store.close();
    }
  });

  for (const [openFiles, most] of [
    [8, 4],
    [1, 1],
  ] as const) {
    it(`allowed ${openFiles} open temporaries, syncs at most ${most} at once and holds no more open`, { skip: canSeeDescriptors ? false : 'needs /proc/self/fd to count descriptors (Linux)' }, async () => {
      const root = path.join(parent, `allowed-${openFiles}`);
      const store = await Store.open(root);
      try {
        const { most: seen, open } = await countingSyncs(root, async () => {
          const outcomes = await store.storeBatch(files, { openFiles });
          assert.ok(outcomes.every((o) => o.status === 'stored'));
        });
        assert.equal(seen, most, `${seen} syncs at once`);
        assert.ok(open > 0 && open <= openFiles, `${open} temporaries open at once, allowed ${openFiles}`);
      } finally {
        await store.close();
      }
    });
  }

  it('without fsync, holds one temporary open at a time and syncs none', { skip: canSeeDescriptors ? false : 'needs /proc/self/fd to count descriptors (Linux)' }, async () => {
    const root = path.join(parent, 'no-fsync');
    const store = await Store.open(root, { fsync: false });
    let open = 0;
    try {
      // Looked at as each one is closed: every temporary still open then is counted.
      const counted = await countingSyncs(root, () =>
        withFsPatched(
          'closeSync',
          (real) => (fd: number) => {
            open = Math.max(open, openTemporaries(root));
            real(fd);
          },
          async () => {
            const outcomes = await store.storeBatch(files);
            assert.ok(outcomes.every((o) => o.status === 'stored'));
          },
        ),
      );
      assert.equal(counted.calls, 0, 'no sync without fsync');
      assert.equal(open, 1, `${open} temporaries open at once`);
      assert.deepEqual(await temporaries(root), []);
    } finally {
      await store.close();
    }
  });

  it('a file whose sync fails is refused and leaves nothing; the rest of the batch is stored', async () => {
    const root = path.join(parent, 'failing');
    const store = await Store.open(root);
    let calls = 0;
    const failing = new Set([3, 40, 99]); // early, past the first window, and the last
    try {
      await withFdatasync(
        (fd, done, real) => {
          if (failing.has(calls++)) setImmediate(() => done(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })));
          else real(fd, done);
        },
        async () => {
          const outcomes = await store.storeBatch(files);
          assert.deepEqual(
            outcomes.map((o, i) => [i, o.status]).filter(([, status]) => status === 'refused'),
            [...failing].map((i) => [i, 'refused']),
          );
        },
      );
      const stored = files.filter((_, i) => !failing.has(i));
      assert.deepEqual(await visibleTree(root), ['tree/', ...stored.map((f) => f.name)].sort());
      assert.deepEqual(await temporaries(root), []);
    } finally {
      await store.close();
    }
  });
});
