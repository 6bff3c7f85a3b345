import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { FerryError } from '../../src/errors.js';
import { Bucket } from '../../src/storage/s3/bucket.js';
import { randomData } from '../helpers/fixtures.js';
import { s3Scratch, s3Skip, TEST_PART_SIZE } from '../helpers/s3.js';

/** The headers of every request the bucket's client sends, as signed, by command. */
function recordRequests(bucket: Bucket): { command: string; headers: Record<string, string> }[] {
  const seen: { command: string; headers: Record<string, string> }[] = [];
  bucket.client.middlewareStack.add(
    (next, context) => (args) => {
      seen.push({ command: context.commandName ?? '', headers: { ...(args.request as { headers: Record<string, string> }).headers } });
      return next(args);
    },
    { step: 'deserialize', name: 'testRecordRequests' },
  );
  return seen;
}

describe('S3 bucket: data bodies', { skip: s3Skip() }, () => {
  it('sends objects and parts unsigned, each with a Content-MD5 the store checks', async () => {
    const scratch = await s3Scratch();
    const bucket = await Bucket.open(scratch.location);
    const seen = recordRequests(bucket);
    try {
      const key = `${scratch.location.prefix}blob`;
      const data = randomData(TEST_PART_SIZE);
      await bucket.put(`${scratch.location.prefix}small`, data.subarray(0, 4096));
      const uploadId = await bucket.createMultipart(key);
      await bucket.uploadPart(key, uploadId, 1, data);
      for (const command of ['PutObjectCommand', 'UploadPartCommand']) {
        const request = seen.find((r) => r.command === command);
        assert.ok(request, command);
        // SigV4 would otherwise hash every byte with SHA-256 on the event loop before sending.
        assert.equal(request.headers['x-amz-content-sha256'], 'UNSIGNED-PAYLOAD', command);
        assert.match(request.headers['content-md5'] ?? '', /^[A-Za-z0-9+/]{22}==$/, command);
      }
      const wrong = createHash('md5').update('other bytes').digest('base64');
      await assert.rejects(
        bucket.uploadPart(key, uploadId, 2, data, wrong),
        (e: unknown) => e instanceof FerryError && e.code === 'INTEGRITY' && /other bytes than were sent/.test(e.message),
      );
      await bucket.abortMultipart(key, uploadId);
    } finally {
      bucket.close();
      await scratch.cleanup();
    }
  });
});
