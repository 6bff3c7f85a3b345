import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { s3Options } from '../../src/cli/commands/serve.js';
import { UsageError } from '../../src/cli/exit.js';
import { parseS3Url } from '../../src/storage/s3/location.js';
import { decodeMeta, encodeMeta, Keys } from '../../src/storage/s3/keys.js';

describe('S3 store: --store, --s3-endpoint and the key layout', () => {
  it('parses s3://BUCKET/PREFIX', () => {
    assert.deepEqual(parseS3Url('s3://files'), { bucket: 'files', prefix: '' });
    assert.deepEqual(parseS3Url('s3://files/'), { bucket: 'files', prefix: '' });
    assert.deepEqual(parseS3Url('s3://files/prod//eu/'), { bucket: 'files', prefix: 'prod/eu/' });
    for (const bad of ['files', 's3://', 's3://Bad_Bucket/x', 's3://files/../x', 'http://files/x']) assert.throws(() => parseS3Url(bad), /--store/, bad);
  });

  it('turns the flags into the server option, or one usage line', () => {
    assert.equal(s3Options({}), undefined);
    assert.deepEqual(s3Options({ store: 's3://files/p', s3Endpoint: 'http://127.0.0.1:7480' }), { bucket: 'files', prefix: 'p/', endpoint: 'http://127.0.0.1:7480' });
    assert.throws(() => s3Options({ s3Endpoint: 'http://x' }), (e: unknown) => e instanceof UsageError && /--s3-endpoint needs --store/.test(e.message));
    assert.throws(() => s3Options({ store: '/srv/files' }), (e: unknown) => e instanceof UsageError && /--root/.test(e.message));
    assert.throws(() => s3Options({ store: 's3://files', s3Endpoint: 'ftp://x' }), (e: unknown) => e instanceof UsageError && /--s3-endpoint/.test(e.message));
  });

  it('keeps server state apart from names, and records size, time and digests', () => {
    const keys = new Keys('p/');
    assert.equal(keys.file('a/b'), 'p/a/b');
    assert.equal(keys.folder(''), 'p/');
    assert.ok(keys.newBlob().startsWith('p/.ferry/blobs/'));
    assert.notEqual(keys.partial('a', 1), keys.partial('a', 2));
    assert.equal(keys.fits('x'.repeat(1000)), true);
    assert.equal(keys.fits('x'.repeat(1022)), false);
    const meta = { size: 3, mtimeMs: 1700000000000, digests: { sha256: Buffer.alloc(32, 1), blake3: Buffer.alloc(32, 2) } };
    assert.deepEqual(decodeMeta({ size: 3, etag: '"x"', metadata: encodeMeta(meta) }), meta);
    assert.equal(decodeMeta({ size: 4, etag: '"x"', metadata: encodeMeta(meta) }), undefined, 'a body of another size is not that file');
    assert.equal(decodeMeta({ size: 3, etag: '"x"', metadata: {} }), undefined, 'objects ferry did not write are not files');
    assert.deepEqual(decodeMeta({ size: 0, etag: '"x"', metadata: encodeMeta({ ...meta, size: 10 << 20, blob: 'p/.ferry/blobs/1' }) })?.blob, 'p/.ferry/blobs/1');
  });
});
