import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import * as tus from 'tus-js-client';
import { createServer } from '../../src/index.js';
import { eventually, randomData, sha256, temporaries, tempDir } from '../helpers/fixtures.js';
import { startHttp, type HttpServer } from './helpers.js';
import { cuttingProxy } from './proxy.js';

function upload(endpoint: string, data: Buffer, metadata: Record<string, string>, options: Partial<tus.UploadOptions> = {}): Promise<{ url: string | null; error?: Error }> {
  return new Promise((resolve) => {
    const job = new tus.Upload(data, {
      endpoint,
      metadata,
      retryDelays: [0, 20, 50, 100],
      ...options,
      onSuccess: () => resolve({ url: job.url }),
      onError: (error) => resolve({ url: job.url, error }),
    });
    job.start();
  });
}

describe('http: tus 1.0 resumable uploads with tus-js-client', () => {
  let server: HttpServer;
  before(async () => {
    server = await startHttp();
  });
  after(() => server.stop());

  it('uploads and verifies against the sha256 in Upload-Metadata', async () => {
    const data = randomData(300_000);
    const result = await upload(`${server.base}/.ferry/tus/`, data, { name: 'tus/one.bin', sha256: sha256(data) });
    assert.equal(result.error, undefined);
    assert.equal(sha256(await fs.readFile(path.join(server.root, 'tus/one.bin'))), sha256(data));
  });

  it('a connection killed mid-upload is resumed by the client and the file verified', async () => {
    const data = randomData(4 * 1024 * 1024);
    const proxy = await cuttingProxy(server.httpPort, 1024 * 1024);
    try {
      const progress: number[] = [];
      const result = await upload(`http://127.0.0.1:${proxy.port}/.ferry/tus/`, data, { name: 'tus/cut.bin', sha256: sha256(data) }, {
        onProgress: (sent) => progress.push(sent),
      });
      assert.equal(result.error, undefined, String(result.error));
      assert.equal(proxy.cuts(), 1, 'the connection was cut once');
      assert.equal(sha256(await fs.readFile(path.join(server.root, 'tus/cut.bin'))), sha256(data));
      assert.ok(progress.length > 0);
    } finally {
      await proxy.close();
    }
    await eventually(async () => (await temporaries(server.root)).length === 0);
  });

  it('a digest that does not match stores nothing (422); an existing name is refused at creation (409)', async () => {
    const data = randomData(10_000);
    const bad = await upload(`${server.base}/.ferry/tus/`, data, { name: 'tus/bad.bin', sha256: sha256(Buffer.from('other')) });
    assert.match(String(bad.error), /422/);
    await assert.rejects(fs.stat(path.join(server.root, 'tus/bad.bin')));
    const clash = await upload(`${server.base}/.ferry/tus/`, data, { name: 'tus/one.bin' });
    assert.match(String(clash.error), /409/);
    const replace = await upload(`${server.base}/.ferry/tus/`, data, { name: 'tus/one.bin', overwrite: '1', sha256: sha256(data) });
    assert.equal(replace.error, undefined);
    assert.equal(sha256(await fs.readFile(path.join(server.root, 'tus/one.bin'))), sha256(data));
    const traversal = await upload(`${server.base}/.ferry/tus/`, data, { name: '../escape.bin' });
    assert.match(String(traversal.error), /400/);
  });

  it('small chunks (a proxy limit per request) and termination', async () => {
    const data = randomData(200_000);
    const chunked = await upload(`${server.base}/.ferry/tus/`, data, { name: 'tus/chunks.bin', sha256: sha256(data) }, { chunkSize: 30_000 });
    assert.equal(chunked.error, undefined);
    assert.equal(sha256(await fs.readFile(path.join(server.root, 'tus/chunks.bin'))), sha256(data));
    const created = await fetch(`${server.base}/.ferry/tus/`, {
      method: 'POST',
      headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '100', 'Upload-Metadata': `name ${Buffer.from('tus/term.bin').toString('base64')}` },
    });
    assert.equal(created.status, 201);
    const url = `${server.base}${created.headers.get('location')}`;
    const patch = await fetch(url, { method: 'PATCH', body: randomData(40), headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' } });
    assert.equal(patch.status, 204);
    assert.equal(patch.headers.get('upload-offset'), '40');
    const wrong = await fetch(url, { method: 'PATCH', body: randomData(10), headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' } });
    assert.equal(wrong.status, 409);
    await wrong.arrayBuffer();
    const head = await fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
    assert.equal(head.headers.get('upload-offset'), '40');
    assert.equal((await fetch(url, { method: 'DELETE', headers: { 'Tus-Resumable': '1.0.0' } })).status, 204);
    const gone = await fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
    assert.equal(gone.headers.get('upload-offset'), '0');
    await eventually(async () => (await temporaries(server.root)).length === 0);
    const noVersion = await fetch(`${server.base}/.ferry/tus/`, { method: 'POST', headers: { 'Upload-Length': '1' } });
    assert.equal(noVersion.status, 412);
    await noVersion.arrayBuffer();
  });
});

describe('http: tus uploads live in the store partials', () => {
  it('an upload left mid-way survives a restart (kept as a partial) and completes', async () => {
    const root = await tempDir('ferry-root-');
    const data = randomData(100_000);
    const start = async (): Promise<{ close: () => Promise<void>; base: string }> => {
      const server = createServer({ host: '127.0.0.1', port: 0, httpPort: 0, root, logger: pino({ level: 'silent' }) });
      await server.listen();
      return { close: () => server.close(500), base: `http://127.0.0.1:${server.pluginAddress('http')!.port}` };
    };
    const headers = { 'Tus-Resumable': '1.0.0' };
    let server = await start();
    const created = await fetch(`${server.base}/.ferry/tus/`, {
      method: 'POST',
      headers: { ...headers, 'Upload-Length': String(data.length), 'Upload-Metadata': `name ${Buffer.from('kept.bin').toString('base64')},sha256 ${Buffer.from(sha256(data)).toString('base64')}` },
    });
    const location = created.headers.get('location')!;
    let res = await fetch(`${server.base}${location}`, { method: 'PATCH', body: data.subarray(0, 60_000), headers: { ...headers, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' } });
    assert.equal(res.status, 204);
    await server.close();
    assert.equal((await fs.readdir(path.join(root, '.ferry/partial'))).length, 2, 'kept as a partial (bytes and name)');
    server = await start();
    try {
      res = await fetch(`${server.base}${location}`, { method: 'HEAD', headers });
      assert.equal(res.headers.get('upload-offset'), '60000');
      res = await fetch(`${server.base}${location}`, { method: 'PATCH', body: data.subarray(60_000), headers: { ...headers, 'Upload-Offset': '60000', 'Content-Type': 'application/offset+octet-stream' } });
      assert.equal(res.status, 204);
      assert.equal(sha256(await fs.readFile(path.join(root, 'kept.bin'))), sha256(data));
    } finally {
      await server.close();
      await fs.rm(root, { recursive: true, force: true });
    }
  });
});
