import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { describe, it } from 'node:test';
import { digestOf } from '../../src/io/digest.js';
import { Bucket } from '../../src/storage/s3/bucket.js';
import { Keys } from '../../src/storage/s3/keys.js';
import { S3Store } from '../../src/storage/s3/store.js';
import { eventually, randomData, tempDir } from '../helpers/fixtures.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { s3Scratch, s3Skip, TEST_PART_SIZE } from '../helpers/s3.js';

const HOUR = 3600_000;

describe('S3 store: kept partial uploads', { skip: s3Skip() }, () => {
  it('aborts expired partials and multipart uploads left without a record, on the store clock', async () => {
    const scratch = await s3Scratch();
    const stateRoot = await tempDir();
    const clock = new ManualClock();
    const store = await S3Store.open(scratch.location, { stateRoot, partSize: TEST_PART_SIZE, clock, partialTtlMs: HOUR });
    const bucket = await Bucket.open(scratch.location);
    const keys = new Keys(scratch.location.prefix);
    try {
      const data = randomData(TEST_PART_SIZE + 100);
      const upload = await store.beginUpload('kept.bin', { size: data.length, resume: true });
      upload.write(data);
      await upload.abort(true);
      // A server that died before its first part finished leaves a multipart upload and no record.
      await bucket.createMultipart(keys.newBlob());
      assert.equal((await bucket.listMultipart(scratch.location.prefix)).length, 2);
      assert.deepEqual(store.partials.list().map((p) => [p.name, p.held]), [['kept.bin', TEST_PART_SIZE]]);

      clock.advance(HOUR / 2);
      assert.equal((await store.probeUpload('kept.bin', data.length)).offset, TEST_PART_SIZE, 'kept within the TTL');
      assert.deepEqual((await store.probeUpload('kept.bin', data.length)).digest, digestOf('sha256', data.subarray(0, TEST_PART_SIZE)));

      // The sweep runs every 10 minutes of the store clock (re-armed once the last one finished).
      clock.advance(HOUR);
      await eventually(
        async () => {
          clock.advance(10 * 60_000);
          return (await bucket.listMultipart(scratch.location.prefix)).length === 0;
        },
        10_000,
        'the expired uploads to be aborted',
      );
      assert.equal((await bucket.list(keys.partials)).keys.length, 0, 'the record is gone');
      assert.equal(store.partials.count, 0);
      assert.equal((await store.probeUpload('kept.bin', data.length)).offset, 0);
    } finally {
      bucket.close();
      await store.close();
      await scratch.cleanup();
      await fs.rm(stateRoot, { recursive: true, force: true });
    }
  });

  it('deletes, with its expired record, a finished blob that no name points to; keeps a published one', async () => {
    const scratch = await s3Scratch();
    const stateRoot = await tempDir();
    const clock = new ManualClock();
    const store = await S3Store.open(scratch.location, { stateRoot, partSize: TEST_PART_SIZE, clock, partialTtlMs: HOUR });
    const bucket = await Bucket.open(scratch.location);
    const keys = new Keys(scratch.location.prefix);
    try {
      // A server that died between CompleteMultipartUpload and publishing: a blob and a record.
      const orphan = keys.newBlob();
      const uploadId = await bucket.createMultipart(orphan);
      const etag = await bucket.uploadPart(orphan, uploadId, 1, Buffer.from('orphan'));
      await bucket.completeMultipart(orphan, uploadId, [{ number: 1, etag }]);
      const record = { blob: orphan, uploadId, partSize: TEST_PART_SIZE, parts: [{ number: 1, etag }], algorithm: 'sha256' as const, prefixDigest: '00', updatedAt: store.partials.wallNow() };
      await store.partials.write({ ...record, name: 'orphan.bin', size: 2 * TEST_PART_SIZE });
      // One that published but died before removing its record: the blob is the file's data.
      const data = randomData(TEST_PART_SIZE + 10);
      const upload = await store.beginUpload('kept.bin', { size: data.length });
      upload.write(data);
      await upload.commit({ size: data.length, digest: digestOf('sha256', data) });
      const published = (await bucket.head(keys.file('kept.bin')))!.metadata['ferry-blob']!;
      await store.partials.write({ ...record, blob: published, name: 'kept.bin', size: data.length });

      clock.advance(2 * HOUR);
      await eventually(
        async () => {
          clock.advance(10 * 60_000);
          return (await bucket.list(keys.partials)).keys.length === 0;
        },
        10_000,
        'the expired records to be removed',
      );
      assert.equal(await bucket.head(orphan), undefined, 'the orphaned blob is gone');
      assert.notEqual(await bucket.head(published), undefined, 'the published blob stays');
      assert.equal((await store.stat('kept.bin')).size, data.length);
    } finally {
      bucket.close();
      await store.close();
      await scratch.cleanup();
      await fs.rm(stateRoot, { recursive: true, force: true });
    }
  });

  it('starts over when an upload of that name and size is not resumed', async () => {
    const scratch = await s3Scratch();
    const stateRoot = await tempDir();
    const store = await S3Store.open(scratch.location, { stateRoot, partSize: TEST_PART_SIZE });
    const bucket = await Bucket.open(scratch.location);
    try {
      const data = randomData(TEST_PART_SIZE + 100);
      const first = await store.beginUpload('again.bin', { size: data.length, resume: true });
      first.write(data);
      await first.abort(true);
      const fresh = await store.beginUpload('again.bin', { size: data.length });
      assert.equal(fresh.offset, 0);
      assert.equal((await bucket.listMultipart(scratch.location.prefix)).length, 0, 'the kept multipart upload was aborted');
      fresh.write(data);
      await fresh.commit({ size: data.length, digest: digestOf('sha256', data) });
      assert.equal((await store.stat('again.bin')).size, data.length);
    } finally {
      bucket.close();
      await store.close();
      await scratch.cleanup();
      await fs.rm(stateRoot, { recursive: true, force: true });
    }
  });
});
