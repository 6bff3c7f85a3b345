import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from '../../src/index.js';
import { runCli } from '../helpers/cli.js';
import { assertDigest, eventually, randomData, sha256, tempDir } from '../helpers/fixtures.js';
import { curl, sha256b64, startHttp, type HttpServer } from './helpers.js';

describe('http ↔ ferry protocol round trips', () => {
  let server: HttpServer;
  let dir: string;
  before(async () => {
    server = await startHttp();
    dir = await tempDir();
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
    await server.stop();
  });

  it('uploaded by curl, downloaded by the client library and by `ferry get`', async () => {
    const data = randomData(3 * 1024 * 1024 + 17);
    const file = path.join(dir, 'in.bin');
    await fs.writeFile(file, data);
    const put = await curl(['-T', file, '-H', `Repr-Digest: sha-256=:${sha256b64(data)}:`, '-o', '/dev/null', '-w', '%{http_code}', `${server.base}/rt/from-curl.bin`]);
    assert.equal(put.stdout.toString(), '201');
    const client = await connect(server.address);
    try {
      const stat = await client.stat('rt/from-curl.bin');
      assertDigest(stat, data);
      const copy = path.join(dir, 'lib-copy.bin');
      await client.get('rt/from-curl.bin', copy);
      assert.equal(sha256(await fs.readFile(copy)), sha256(data));
    } finally {
      await client.close();
    }
    const cliCopy = path.join(dir, 'cli-copy.bin');
    const got = await runCli(['get', 'rt/from-curl.bin', '-o', cliCopy, '-s', `127.0.0.1:${server.address.port}`]);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(sha256(await fs.readFile(cliCopy)), sha256(data));
  });

  it('uploaded by `ferry put` and the library, downloaded by curl and fetch with the same digest', async () => {
    const data = randomData(2 * 1024 * 1024 + 5);
    const file = path.join(dir, 'out.bin');
    await fs.writeFile(file, data);
    const put = await runCli(['put', file, '--as', 'rt/from-cli.bin', '-s', `127.0.0.1:${server.address.port}`]);
    assert.equal(put.code, 0, put.stderr);
    const copy = path.join(dir, 'curl-copy.bin');
    const got = await curl(['-o', copy, '-D', '-', `${server.base}/rt/from-cli.bin`]);
    assert.match(got.stdout.toString(), new RegExp(`repr-digest: sha-256=:${sha256b64(data).replace(/[+/]/g, '\\$&')}:`, 'i'));
    assert.equal(sha256(await fs.readFile(copy)), sha256(data));
    const client = await connect(server.address);
    try {
      await client.put(Buffer.from('from the library'), 'rt/lib.txt');
    } finally {
      await client.close();
    }
    assert.equal(await (await fetch(`${server.base}/rt/lib.txt`)).text(), 'from the library');
    // Resumed download by curl (-C -) gets the rest with a Range request.
    const partial = path.join(dir, 'resume.bin');
    await fs.writeFile(partial, data.subarray(0, 1_000_000));
    const resumed = await curl(['-C', '-', '-o', partial, `${server.base}/rt/from-cli.bin`]);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal(sha256(await fs.readFile(partial)), sha256(data));
  });

  it('`ferry serve --http-port` as a real process', async () => {
    const root = await tempDir('ferry-root-');
    const { startServeProcess } = await import('../helpers/cli.js');
    const serve = await startServeProcess(['--root', root, '--http-port', '0']);
    try {
      await eventually(() => /http listening on/.test(serve.output()), 5000, 'the http line');
      const line = /http listening on [^:]+:(\d+)/.exec(serve.output());
      assert.ok(line, serve.output());
      const res = await fetch(`http://127.0.0.1:${line[1]}/`, { headers: { Accept: 'application/json' } });
      assert.deepEqual(await res.json(), []);
    } finally {
      assert.equal(await serve.stop(), 0);
      await fs.rm(root, { recursive: true, force: true });
    }
  });
});
