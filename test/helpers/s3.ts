import { randomBytes } from 'node:crypto';
import { Bucket } from '../../src/storage/s3/bucket.js';
import type { S3Location } from '../../src/storage/s3/location.js';

/**
 * The S3 store the S3 suites run against: S3_ENDPOINT, S3_BUCKET and the AWS_* credentials
 * (scripts/s3-local/with-s3.sh sets them for `npm test` after starting a local Ceph RGW; any
 * other endpoint can be given the same way). Undefined when they are not set: the suites skip.
 */
export function s3Location(): S3Location | undefined {
  const endpoint = process.env.S3_ENDPOINT;
  const bucket = process.env.S3_BUCKET;
  if (!endpoint || !bucket || !process.env.AWS_ACCESS_KEY_ID) return undefined;
  return { endpoint, bucket, prefix: '' };
}

/** Why the S3 suite is skipped (one line), or false to run it. */
export function s3Skip(): string | false {
  return s3Location() === undefined ? 'no S3 store: set S3_ENDPOINT, S3_BUCKET and AWS_* (npm test starts a local Ceph RGW when it can)' : false;
}

/** The smallest part S3 takes: tests use it so "large" files stay small. */
export const TEST_PART_SIZE = 5 * 1024 * 1024;

/** A fresh prefix in the test bucket, and its removal with everything under it. */
export async function s3Scratch(): Promise<{ location: S3Location; cleanup: () => Promise<void> }> {
  const base = s3Location()!;
  const location = { ...base, prefix: `test-${Date.now()}-${randomBytes(4).toString('hex')}/` };
  return {
    location,
    cleanup: async () => {
      const bucket = await Bucket.open(location);
      try {
        for (;;) {
          const page = await bucket.list(location.prefix);
          if (page.keys.length === 0) break;
          await bucket.deleteMany(page.keys.map((k) => k.key));
        }
        for (const upload of await bucket.listMultipart(location.prefix)) await bucket.abortMultipart(upload.key, upload.uploadId);
      } finally {
        bucket.close();
      }
    },
  };
}
