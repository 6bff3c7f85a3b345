import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { connect } from '../../src/index.js';
import { Feed, inLanes } from '../../src/cli/feed.js';
import { streamLocalTree, type LocalFile } from '../../src/cli/local-tree.js';
import { startServer, tempDir } from '../helpers/fixtures.js';

/** Issue 12: `put -r` walks the tree as a stream, never more than its window ahead of the uploads. */
describe('streamed trees', () => {
  it('the walk is never more than the lanes ahead of finished uploads', async () => {
    const src = await tempDir('ferry-window-');
    const server = await startServer();
    try {
      for (let folder = 0; folder < 6; folder++) {
        await fs.mkdir(path.join(src, `d${folder}`));
        for (let i = 0; i < 50; i++) await fs.writeFile(path.join(src, `d${folder}`, `f${i}.txt`), `${folder}/${i}`);
      }
      const lanes = 4;
      let walked = 0;
      let finished = 0;
      let mostAhead = 0;
      async function* counted(): AsyncGenerator<LocalFile> {
        for await (const file of streamLocalTree(src, () => undefined)) {
          walked++;
          mostAhead = Math.max(mostAhead, walked - finished);
          yield file;
        }
      }
      const client = await connect({ port: server.address.port });
      const feed = new Feed(counted());
      await inLanes(lanes, async () => {
        for (let file = await feed.next(); file !== undefined; file = await feed.next()) {
          await client.put(file.path, `tree/${file.relative}`);
          finished++;
        }
      });
      await client.close();
      assert.equal(finished, 300);
      assert.equal(feed.taken, 300);
      assert.ok(mostAhead <= lanes, `the walk ran ${mostAhead} files ahead of the uploads (lanes: ${lanes})`);
      const stored = await fs.readdir(path.join(server.root, 'tree', 'd5'));
      assert.equal(stored.length, 50);
    } finally {
      await server.stop();
      await fs.rm(src, { recursive: true, force: true });
    }
  });

  it('a source that fails ends the feed for every lane and is kept', async () => {
    async function* failing(): AsyncGenerator<number> {
      yield 1;
      throw new Error('unreadable folder');
    }
    const feed = new Feed(failing());
    const seen: number[] = [];
    await inLanes(3, async () => {
      for (let item = await feed.next(); item !== undefined; item = await feed.next()) seen.push(item);
    });
    assert.deepEqual(seen, [1]);
    assert.equal((feed.failure as Error).message, 'unreadable folder');
    assert.equal(feed.done, true);
  });
});
