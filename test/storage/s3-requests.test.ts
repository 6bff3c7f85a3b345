import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, type FerryClient } from '../../src/index.js';
import { randomData, startServer, type TestServer } from '../helpers/fixtures.js';
import { s3Scratch, s3Skip, TEST_PART_SIZE } from '../helpers/s3.js';
import { Bucket } from '../../src/storage/s3/bucket.js';
import type { S3Location } from '../../src/storage/s3/location.js';
import { CountingProxy } from './s3-counting-proxy.js';

const FILES = 40;

/** Requests the S3 store saw during `work`. */
async function counted<T>(proxy: CountingProxy, work: () => Promise<T>): Promise<{ value: T; total: number; counts: string }> {
  proxy.reset();
  const value = await work();
  return { value, total: proxy.count(), counts: [...proxy.counts].map(([kind, n]) => `${kind} ${n}`).join(', ') };
}

/**
 * The S3 store's requests per small file, counted at the store (through a proxy on loopback):
 * a batch of small files costs one PutObject each and a few for the batch, a listing asks
 * nothing per file this server knows, and a batch read is one GET per file.
 */
describe('S3 store: requests per small file', { skip: s3Skip() }, () => {
  let proxy: CountingProxy;
  let cleanup: () => Promise<void>;
  let location: S3Location;
  const servers: TestServer[] = [];
  const clients: FerryClient[] = [];
  const files = Array.from({ length: FILES }, (_, i) => ({ name: `tree/f${String(i).padStart(3, '0')}.bin`, data: randomData(1000 + i) }));

  before(async () => {
    const scratch = await s3Scratch();
    cleanup = scratch.cleanup;
    location = scratch.location;
    proxy = await CountingProxy.start(scratch.location.endpoint!);
    for (let i = 0; i < 2; i++) {
      servers.push(await startServer({ s3: { ...scratch.location, endpoint: proxy.endpoint, partSize: TEST_PART_SIZE } }));
      clients.push(await connect(servers[i]!.address));
    }
  });
  after(async () => {
    for (const client of clients) await client.close();
    for (const server of servers) await server.stop();
    await proxy?.close();
    await cleanup?.();
  });

  it('stores a batch with one PutObject per file and a LIST and a HEAD for the batch', async () => {
    const put = await counted(proxy, () => clients[0]!.putBatch(files, { skipIdentical: true }));
    assert.deepEqual(
      put.value.map((r) => r.status),
      files.map(() => 'stored'),
    );
    // Per batch: the folder's listing page and a HEAD of "tree" (a file there would refuse them all).
    assert.ok(put.total <= FILES + 2, `${put.total} requests for ${FILES} files (${put.counts})`);

    const again = await counted(proxy, () => clients[0]!.putBatch(files, { skipIdentical: true }));
    assert.deepEqual(
      again.value.map((r) => r.status),
      files.map(() => 'identical'),
    );
    assert.ok(again.total <= 2, `${again.total} requests to find ${FILES} known files identical (${again.counts})`);
  });

  it('lists without a HEAD per file it knows, and reads a batch with one GET per file', async () => {
    const listing = await counted(proxy, () => clients[0]!.list('tree'));
    assert.equal(listing.value.length, FILES);
    assert.ok(listing.total <= 2, `${listing.total} requests to list ${FILES} files (${listing.counts})`);

    const read = await counted(proxy, () => clients[0]!.getBatch(files.map((f) => f.name)));
    for (const [i, result] of read.value.entries()) assert.ok(result.status === 'file' && result.data.equals(files[i]!.data), `${files[i]!.name} read back`);
    assert.ok(read.total <= FILES, `${read.total} requests to read ${FILES} files (${read.counts})`);
  });

  it('another server learns the metadata from one listing, and sees a file replaced through the first', async () => {
    const first = await counted(proxy, () => clients[1]!.list('tree'));
    assert.equal(first.value.length, FILES);
    assert.ok(first.total <= FILES + 2, `${first.total} requests (${first.counts})`);
    const second = await counted(proxy, () => clients[1]!.list('tree'));
    assert.ok(second.total <= 2, `${second.total} requests for a listing known already (${second.counts})`);

    const replaced = randomData(5000);
    const [result] = await clients[0]!.putBatch([{ name: files[0]!.name, data: replaced }], { overwrite: true });
    assert.equal(result!.status, 'stored');
    const entry = (await clients[1]!.list('tree')).find((e) => e.name === files[0]!.name)!;
    assert.equal(entry.size, replaced.length, 'the other server lists the new version');
    const [back] = await clients[1]!.getBatch([files[0]!.name]);
    assert.ok(back?.status === 'file' && back.data.equals(replaced));
  });

  it('reads at most 16 files at once from the store, however many connections ask', async () => {
    const many = await Promise.all(Array.from({ length: 8 }, () => connect(servers[0]!.address)));
    try {
      proxy.reset();
      const reads = await Promise.all(many.map((client) => client.getBatch(files.map((f) => f.name))));
      for (const results of reads) assert.ok(results.every((r) => r.status === 'file'));
      assert.ok(proxy.mostInFlight <= 16, `${proxy.mostInFlight} requests at once`);
    } finally {
      for (const client of many) await client.close();
    }
  });

  it('lists a folder in pages with a bucket listing per page, not the whole folder per page', async () => {
    // 1,100 files in pages of 100: each page lists from its first possible key on, and stops
    // once past its last (before: the whole folder, two listing requests, for every page).
    const many = Array.from({ length: 1100 }, (_, i) => ({ name: `paged/f${String(i).padStart(4, '0')}`, data: Buffer.from(`${i}`) }));
    for (let i = 0; i < many.length; i += 256) await clients[0]!.putBatch(many.slice(i, i + 256));
    const pages: string[][] = [];
    const listed = await counted(proxy, async () => {
      for await (const page of clients[0]!.listFolder('paged', { limit: 100 })) pages.push(page.map((e) => e.name));
    });
    assert.deepEqual(pages.flat(), many.map((f) => f.name));
    assert.equal(pages.length, 11);
    assert.ok(proxy.count('LIST') <= pages.length + 2, `${proxy.count('LIST')} listing requests for ${pages.length} pages (${listed.counts})`);
  });

  it('fills a page again when files vanish between the listing and their HEADs', async () => {
    const names = Array.from({ length: 10 }, (_, i) => `vanish/v${i}`);
    await clients[0]!.putBatch(names.map((name) => ({ name, data: Buffer.from(name) })));
    // The second server knows none of them: it HEADs the page's files, and the first of those
    // HEADs waits until two of them are deleted behind its back (as another server would).
    const bucket = await Bucket.open(location);
    let gone: Promise<void> | undefined;
    proxy.beforeForward = (kind, url) => (kind === 'HEAD' && url.includes('/vanish/v') ? (gone ??= bucket.deleteMany([`${location.prefix}vanish/v1`, `${location.prefix}vanish/v2`])) : undefined);
    try {
      const first = await clients[1]!.listPage('vanish', { limit: 4 });
      assert.ok(gone !== undefined, 'the page\'s files were read with HEADs');
      assert.deepEqual(
        first.map((e) => e.name),
        ['vanish/v0', 'vanish/v3', 'vanish/v4', 'vanish/v5'],
        'a full page: the keys after the last kept one listed again',
      );
      const pages: string[][] = [first.map((e) => e.name)];
      for await (const page of clients[1]!.listFolder('vanish', { limit: 4 })) pages.push(page.map((e) => e.name));
      assert.deepEqual(pages.slice(1).flat(), ['vanish/v0', ...names.slice(3)]);
    } finally {
      proxy.beforeForward = undefined;
      bucket.close();
    }
  });

  it('refuses, in a batch, a name a folder has and a name under a file', async () => {
    const mixed = [
      { name: 'tree', data: randomData(10) }, // a folder already
      { name: 'tree/f001.bin/x', data: randomData(10) }, // under a file
      { name: 'tree/new.bin', data: randomData(10) },
    ];
    const results = await clients[0]!.putBatch(mixed);
    const shown = results.map((r) => (r.status === 'refused' ? r.error.code : r.status));
    assert.deepEqual(shown, ['EXISTS', 'CONFLICT', 'stored']);
  });
});
