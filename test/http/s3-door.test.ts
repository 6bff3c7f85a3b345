import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tus from 'tus-js-client';
import { randomData, sha256 } from '../helpers/fixtures.js';
import { s3Scratch, s3Skip, TEST_PART_SIZE } from '../helpers/s3.js';
import { sha256b64, startHttp, untar, type HttpServer } from './helpers.js';

describe('http door on the S3 store', { skip: s3Skip() }, () => {
  let server: HttpServer;
  let cleanup: () => Promise<void>;

  before(async () => {
    const scratch = await s3Scratch();
    cleanup = scratch.cleanup;
    server = await startHttp({ s3: { ...scratch.location, partSize: TEST_PART_SIZE } });
  });
  after(async () => {
    await server?.stop();
    await cleanup?.();
  });

  it('PUT, GET with ranges and digests, listing, tar, DELETE', async () => {
    const data = randomData(TEST_PART_SIZE + 5000);
    assert.equal((await fetch(`${server.base}/d/big.bin`, { method: 'PUT', body: data })).status, 201);
    assert.equal((await fetch(`${server.base}/d/big.bin`, { method: 'PUT', body: 'x' })).status, 409);
    let res = await fetch(`${server.base}/d/big.bin`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('repr-digest'), `sha-256=:${sha256b64(data)}:`);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(data));
    res = await fetch(`${server.base}/d/big.bin`, { headers: { Range: 'bytes=-100' } });
    assert.equal(res.status, 206);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(data.subarray(data.length - 100)));
    res = await fetch(`${server.base}/d/`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /big\.bin/);
    res = await fetch(`${server.base}/d/?download=tar`);
    assert.equal(res.status, 200);
    const files = await untar(Buffer.from(await res.arrayBuffer()));
    assert.ok([...files.values()][0]?.equals(data));
    assert.equal((await fetch(`${server.base}/d/big.bin`, { method: 'DELETE' })).status, 204);
    assert.equal((await fetch(`${server.base}/d/big.bin`)).status, 404);
  });

  it('tus: a resumable upload in small chunks is verified and stored', async () => {
    const data = randomData(TEST_PART_SIZE + 300_000);
    const error = await new Promise<Error | undefined>((resolve) => {
      const job = new tus.Upload(data, {
        endpoint: `${server.base}/.ferry/tus/`,
        metadata: { name: 't/one.bin', sha256: sha256(data) },
        chunkSize: 1024 * 1024,
        retryDelays: [0, 20, 50],
        onSuccess: () => resolve(undefined),
        onError: resolve,
      });
      job.start();
    });
    assert.equal(error, undefined);
    const res = await fetch(`${server.base}/t/one.bin`);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(data));
  });
});
