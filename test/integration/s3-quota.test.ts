import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { connect, FerryError } from '../../src/index.js';
import { S3Store } from '../../src/storage/s3/store.js';
import { SURVEY_EVERY_MS } from '../../src/storage/s3/quota.js';
import { eventually, randomData, startServer, tempDir, type TestServer } from '../helpers/fixtures.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { s3Location, s3Scratch, s3Skip, TEST_PART_SIZE } from '../helpers/s3.js';
import type { S3Location } from '../../src/storage/s3/location.js';

async function codeOf(work: Promise<unknown>): Promise<string> {
  try {
    await work;
    return 'ok';
  } catch (error) {
    return error instanceof FerryError ? error.code : String(error);
  }
}

const QUOTA = 300_000;

describe('--quota on the S3 store, shared by the servers on one prefix', { skip: s3Skip() }, () => {
  let location: S3Location;
  let cleanup: () => Promise<void>;
  const clocks = [new ManualClock(), new ManualClock()];
  const servers: TestServer[] = [];

  before(async () => {
    const scratch = await s3Scratch();
    location = scratch.location;
    cleanup = scratch.cleanup;
    // What was under the prefix before the servers started is counted by their first survey.
    const seed = await S3Store.open(location, { stateRoot: await tempDir() });
    const upload = await seed.beginUpload('before.bin', { size: 50_000 });
    upload.write(randomData(50_000));
    await upload.commit({ size: 50_000 });
    await seed.close();
    for (const clock of clocks) servers.push(await startServer({ s3: { ...location, partSize: TEST_PART_SIZE }, quota: QUOTA, clock }));
  });
  after(async () => {
    for (const server of servers) await server.stop();
    await cleanup?.();
  });

  it('refuses what does not fit, counts removals, and sees the other servers\' files at its next survey', async () => {
    const [a, b] = [await connect(servers[0]!.address), await connect(servers[1]!.address)];
    try {
      assert.equal(servers[0]!.server.storage.space.stored, 50_000, 'the first survey counts what the prefix held');
      await a.put(randomData(215_000), 'a/one.bin');
      // 50,000 + 215,000 stored: 120,000 more is over 300,000.
      assert.equal(await codeOf(a.put(randomData(120_000), 'a/two.bin')), 'QUOTA');
      assert.equal(await codeOf(a.stat('a/two.bin')), 'NOT_FOUND', 'a refused upload leaves nothing');
      // A batch of small files reserves each one: the ones past the quota are refused.
      const outcomes = await a.putBatch([0, 1, 2, 3].map((i) => ({ name: `a/batch/f${i}.bin`, data: randomData(12_000) })));
      assert.deepEqual(outcomes.map((o) => (o.status === 'refused' ? o.error.code : o.status)), ['stored', 'stored', 'QUOTA', 'QUOTA']);
      // Server B has not surveyed since A stored: it still takes 120,000 (the overshoot the docs name).
      await b.put(randomData(120_000), 'b/one.bin');
      clocks[1]!.advance(SURVEY_EVERY_MS);
      await eventually(() => servers[1]!.server.storage.space.stored === 50_000 + 215_000 + 24_000 + 120_000, 5000, 'B\'s survey');
      assert.equal(await codeOf(b.put(randomData(1000), 'b/two.bin')), 'QUOTA');
      // A removal frees room at once on the server that made it.
      await b.removeTree('a');
      await b.remove('b/one.bin');
      assert.equal(servers[1]!.server.storage.space.stored, 50_000);
      await b.put(randomData(200_000), 'b/three.bin');
      assert.equal(servers[1]!.server.storage.space.reserved, 0, 'a finished upload holds no reservation');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe('the S3 store\'s own quota', { skip: s3Skip() || (process.env.S3_QUOTA_BUCKET ? false : 'no bucket with a quota: set S3_QUOTA_BUCKET (scripts/s3-local/start-s3.sh makes one)') }, () => {
  let server: TestServer;
  let stateRoot: string;

  before(async () => {
    const location = { ...s3Location()!, bucket: process.env.S3_QUOTA_BUCKET!, prefix: `quota-${Date.now()}/` };
    server = await startServer({ s3: { ...location, partSize: TEST_PART_SIZE } });
    stateRoot = await tempDir();
  });
  after(async () => {
    await server?.stop();
    if (stateRoot) await fs.rm(stateRoot, { recursive: true, force: true });
  });

  it('reaches clients as QUOTA, for a file in one PUT and for a file sent in parts, and leaves nothing', async () => {
    const client = await connect(server.address);
    try {
      for (const [name, size] of [['one.bin', 2_000_000], ['parts.bin', 2 * TEST_PART_SIZE + 1]] as const) {
        let error: unknown;
        await client.put(randomData(size), name).catch((e: unknown) => (error = e));
        assert.ok(error instanceof FerryError, `${name}: refused`);
        assert.equal(error.code, 'QUOTA', `${name}: ${error.message}`);
        assert.match(error.message, /quota/);
      }
      assert.deepEqual(await client.list(''), []);
    } finally {
      await client.close();
    }
  });
});

describe('--quota on the S3 store: kept partials and uploads of undeclared size', { skip: s3Skip() }, () => {
  it('counts a kept partial once, also while it is resumed, and reserves room as an undeclared upload grows', async () => {
    const scratch = await s3Scratch();
    const stateRoot = await tempDir();
    const size = 2 * TEST_PART_SIZE + 1;
    const store = await S3Store.open(scratch.location, { stateRoot, partSize: TEST_PART_SIZE, quota: size + 1000, clock: new ManualClock() });
    try {
      const data = randomData(size);
      const cut = await store.beginUpload('big.bin', { size, resume: true });
      cut.write(data.subarray(0, 2 * TEST_PART_SIZE + 10));
      await cut.abort(true);
      assert.equal(store.space.partials, 2 * TEST_PART_SIZE, 'the kept parts count');
      // Another file does not fit beside the kept partial...
      assert.equal(await codeOf(store.beginUpload('other.bin', { size: 1_000_000 })), 'QUOTA');
      // ...but the partial's own resume does: its parts are not counted twice.
      const resumed = await store.beginUpload('big.bin', { size, resume: true });
      const { offset } = await store.probeUpload('big.bin', size);
      assert.equal(offset, 2 * TEST_PART_SIZE);
      resumed.write(data.subarray(offset));
      await resumed.commit({ size });
      assert.deepEqual({ ...store.space }, { quota: size + 1000, stored: size, partials: 0, reserved: 0 });

      await store.remove('big.bin');
      // Undeclared size: room is reserved as the bytes come, and refused past the quota.
      const open = await store.beginUpload('open.bin', {});
      assert.throws(() => open.write(randomData(size + 1001)), (e: unknown) => e instanceof FerryError && e.code === 'QUOTA');
      await open.abort();
      assert.equal(store.space.reserved, 0);
      const fits = await store.beginUpload('fits.bin', {});
      fits.write(randomData(1000));
      assert.ok(store.space.reserved >= 1000);
      await fits.commit({});
      assert.deepEqual({ ...store.space }, { quota: size + 1000, stored: 1000, partials: 0, reserved: 0 });
    } finally {
      await store.close();
      await scratch.cleanup();
      await fs.rm(stateRoot, { recursive: true, force: true });
    }
  });
});
