import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { connect } from '../../src/index.js';
import { startServeProcess } from '../helpers/cli.js';
import { randomData, sha256, sha256File, tempDir, temporaries, visibleTree } from '../helpers/fixtures.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Issue 12: a server SIGKILLed while it commits batches (PUT_BATCH) under load. Every file a
 * BATCH_RESULTS acknowledged survives whole; every file visible is whole (each file of a batch
 * is atomic on its own: a batch cut by the crash may be partly stored, never a part of a file);
 * no temporary outlives the restart.
 */
describe('batched uploads and crashes', () => {
  it('an acknowledged file of a batch survives SIGKILL, and no file appears in part', async () => {
    const root = await tempDir('ferry-batch-crash-');
    const sent = new Map<string, string>(); // every name tried → sha256 of its bytes
    const acked = new Map<string, string>();
    try {
      for (const [round, killAfterMs] of [30, 150, 400, 900].entries()) {
        const serve = await startServeProcess(['--root', root]);
        const clients = await Promise.all([0, 1].map(() => connect({ port: serve.port, timeoutMs: 5000 })));
        // Six lanes (three per connection) each send batch after batch: acknowledgements keep coming.
        let next = 0;
        const lane = async (client: (typeof clients)[number]): Promise<void> => {
          while (next < 60) {
            const batch = next++;
            const files = Array.from({ length: 40 }, (_, i) => {
              const data = randomData((batch * 40 + i) % 1500);
              const name = `round${round}/d${batch % 7}/b${batch}-f${i}.bin`;
              sent.set(name, sha256(data));
              return { name, data };
            });
            const results = await client.putBatch(files);
            results.forEach((r, i) => r.status === 'stored' && acked.set(files[i]!.name, sha256(files[i]!.data)));
          }
        };
        const work = [0, 1, 2, 3, 4, 5].map((i) => lane(clients[i % 2]!).catch(() => undefined));
        await sleep(killAfterMs);
        await serve.stop('SIGKILL');
        await Promise.allSettled(work);
        for (const client of clients) client.destroy();
      }
      const serve = await startServeProcess(['--root', root]);
      try {
        assert.ok(acked.size > 0, 'some batches were acknowledged before a kill');
        assert.ok(acked.size < sent.size, 'some batches were cut by a kill');
        for (const [name, digest] of acked) assert.equal(await sha256File(path.join(root, name)), digest, `${name} is intact`);
        const visible = (await visibleTree(root)).filter((p) => !p.endsWith('/'));
        for (const name of visible) assert.equal(await sha256File(path.join(root, name)), sent.get(name), `${name} is whole`);
        assert.deepEqual(await temporaries(root), [], 'temporaries are swept at start');
        // The digest logs, appended to up to each kill (a torn last line included), serve every
        // visible file's true digest after the crashes: a listing and a stat of each.
        const client = await connect({ port: serve.port, digest: 'sha256' });
        const listed = new Map((await client.list('', { recursive: true })).filter((e) => e.kind === 'file').map((e) => [e.name, e.digest]));
        assert.deepEqual([...listed.keys()].sort(), [...visible].sort());
        for (const name of visible) assert.equal(listed.get(name), sent.get(name), `${name}'s listed digest`);
        for (const [name, digest] of acked) assert.equal((await client.stat(name)).digest, digest);
        await client.close();
      } finally {
        await serve.stop();
      }
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });
});
