import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { FerryError } from '../../src/errors.js';
import { Bucket } from '../../src/storage/s3/bucket.js';
import { randomData } from '../helpers/fixtures.js';
import { s3Scratch, s3Skip, TEST_PART_SIZE } from '../helpers/s3.js';
import { CountingProxy } from './s3-counting-proxy.js';

describe('S3 bucket: data bodies', { skip: s3Skip() }, () => {
  it('sends objects and parts unsigned, each with a Content-MD5 the store checks', async () => {
    const scratch = await s3Scratch();
    // Seen at the store's door: parts do not go through the SDK (see PartSender).
    const proxy = await CountingProxy.start(scratch.location.endpoint!);
    const bucket = await Bucket.open({ ...scratch.location, endpoint: proxy.endpoint });
    try {
      const key = `${scratch.location.prefix}blob`;
      const data = randomData(TEST_PART_SIZE);
      await bucket.put(`${scratch.location.prefix}small`, data.subarray(0, 4096));
      const uploadId = await bucket.createMultipart(key);
      await bucket.uploadPart(key, uploadId, 1, data);
      await bucket.uploadPart(key, uploadId, 2, data);
      const puts = proxy.seen.filter((r) => r.method === 'PUT');
      const object = puts.find((r) => !r.url.includes('partNumber='));
      const parts = puts.filter((r) => r.url.includes('partNumber='));
      assert.equal(parts.length, 2);
      for (const request of [object!, ...parts]) {
        // SigV4 would otherwise hash every byte with SHA-256 on the event loop before sending.
        assert.equal(request.headers['x-amz-content-sha256'], 'UNSIGNED-PAYLOAD', request.url);
        assert.match(String(request.headers['content-md5'] ?? ''), /^[A-Za-z0-9+/]{22}==$/, request.url);
      }
      // Parts go without the SDK once a request it signed (CreateMultipartUpload) showed where.
      assert.match(String(object!.headers['user-agent']), /aws-sdk/, 'the SDK sent the object');
      for (const part of parts) assert.equal(part.headers['user-agent'], undefined, 'a part sent without the SDK');
      const wrong = createHash('md5').update('other bytes').digest('base64');
      await assert.rejects(
        bucket.uploadPart(key, uploadId, 3, data, wrong),
        (e: unknown) => e instanceof FerryError && e.code === 'INTEGRITY' && /other bytes than were sent/.test(e.message),
      );
      await bucket.abortMultipart(key, uploadId);
    } finally {
      bucket.close();
      await proxy.close();
      await scratch.cleanup();
    }
  });
});
