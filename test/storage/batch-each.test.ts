import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { describe, it } from 'node:test';
import { digestOf } from '../../src/io/digest.js';
import type { StoreBackend, StoreUpload } from '../../src/storage/backend.js';
import { storeEachFile } from '../../src/storage/batch-each.js';
import { Store } from '../../src/storage/store.js';
import { randomData, tempDir } from '../helpers/fixtures.js';

describe('batches on a backend without a batched write path', () => {
  it('many batches at once keep at most 16 uploads in flight per store, and store every file', async () => {
    const root = await tempDir();
    const store = await Store.open(root, { fsync: false });
    let inFlight = 0;
    let most = 0;
    // The real local store, watched: how many uploads are between begin and commit at once.
    const watched: Pick<StoreBackend, 'stat' | 'beginUpload'> = {
      stat: (name, algorithm) => store.stat(name, algorithm),
      beginUpload: async (name, options) => {
        const upload = await store.beginUpload(name, options);
        inFlight++;
        most = Math.max(most, inFlight);
        const commit = upload.commit.bind(upload);
        const abort = upload.abort.bind(upload);
        return Object.assign(upload, {
          commit: async (expected: Parameters<StoreUpload['commit']>[0]) => {
            await new Promise((resolve) => setImmediate(resolve)); // let the others pile up
            try {
              return await commit(expected);
            } finally {
              inFlight--;
            }
          },
          abort: async (keep?: boolean) => {
            inFlight--;
            await abort(keep);
          },
        });
      },
    };
    try {
      const batches = Array.from({ length: 6 }, (_, b) =>
        Array.from({ length: 20 }, (_, i) => {
          const data = randomData(100 + i);
          return { name: `b${b}/f${i}.bin`, data, digest: digestOf('sha256', data) };
        }),
      );
      const outcomes = await Promise.all(batches.map((files) => storeEachFile(watched, files, { algorithm: 'sha256' })));
      assert.ok(outcomes.flat().every((o) => o.status === 'stored'));
      assert.equal((await store.list('', true)).length, 120);
      assert.equal(most, 16, `at most 16 in flight (saw ${most})`);
    } finally {
      await store.close();
      await fs.rm(root, { recursive: true, force: true });
    }
  });
});
