import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TokenSet } from '../../src/index.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { eventually, randomData, sha256, temporaries, tempDir, visibleTree } from '../helpers/fixtures.js';
import { curl, rawRequest, sha256b64, startHttp, type HttpServer } from './helpers.js';

const WRITE = 'w'.repeat(32);
const READ = 'r'.repeat(32);

describe('http: uploads', () => {
  let server: HttpServer;
  before(async () => {
    server = await startHttp({ maxFileSize: 1_000_000 });
  });
  after(() => server.stop());

  it('PUT stores a new file (201), refuses an existing one (409), replaces with ?overwrite=1 (200)', async () => {
    const data = randomData(50_000);
    let res = await fetch(`${server.base}/up/a.bin`, { method: 'PUT', body: data, headers: { 'Content-Digest': `sha-256=:${sha256b64(data)}:` } });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('repr-digest'), `sha-256=:${sha256b64(data)}:`);
    assert.equal(((await res.json()) as { digest: string }).digest, `sha256:${sha256(data)}`);
    assert.equal(sha256(await fs.readFile(path.join(server.root, 'up/a.bin'))), sha256(data));
    res = await fetch(`${server.base}/up/a.bin`, { method: 'PUT', body: 'other' });
    assert.equal(res.status, 409);
    assert.equal(res.headers.get('ferry-error'), 'EXISTS');
    await res.arrayBuffer();
    res = await fetch(`${server.base}/up/a.bin?overwrite=1`, { method: 'PUT', body: 'other', headers: { 'Repr-Digest': `sha-256=:${sha256b64(Buffer.from('other'))}:` } });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    assert.equal(await fs.readFile(path.join(server.root, 'up/a.bin'), 'utf8'), 'other');
  });

  it('a digest mismatch stores nothing (422); sha-512 is checked too; a malformed digest is 400', async () => {
    const data = randomData(10_000);
    const wrong = sha256b64(Buffer.from('something else'));
    let res = await fetch(`${server.base}/up/bad.bin`, { method: 'PUT', body: data, headers: { 'Content-Digest': `sha-256=:${wrong}:` } });
    assert.equal(res.status, 422);
    assert.equal(res.headers.get('ferry-error'), 'INTEGRITY');
    await res.arrayBuffer();
    const sha512 = (b: Buffer): string => createHash('sha512').update(b).digest('base64');
    res = await fetch(`${server.base}/up/bad.bin`, { method: 'PUT', body: data, headers: { 'Content-Digest': `sha-512=:${sha512(Buffer.from('x'))}:` } });
    assert.equal(res.status, 422);
    await res.arrayBuffer();
    res = await fetch(`${server.base}/up/bad.bin`, { method: 'PUT', body: data, headers: { 'Content-Digest': 'sha-256=not-base64' } });
    assert.equal(res.status, 400);
    await res.arrayBuffer();
    await assert.rejects(fs.stat(path.join(server.root, 'up/bad.bin')));
    await eventually(async () => (await temporaries(server.root)).length === 0);
    res = await fetch(`${server.base}/up/good512.bin`, { method: 'PUT', body: data, headers: { 'Content-Digest': `sha-512=:${sha512(data)}:, md5=:AAAAAAAAAAAAAAAAAAAAAA==:` } });
    assert.equal(res.status, 201);
    await res.arrayBuffer();
  });

  it('over the size limit is 413 before the body: with Expect: 100-continue no 100 is sent', async () => {
    const res = await rawRequest(
      server.httpPort,
      'PUT /up/huge.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\nExpect: 100-continue\r\n\r\n',
    );
    assert.equal(res.status, 413);
    assert.equal(res.headers['ferry-error'], 'TOO_LARGE');
    assert.equal(res.headers.connection, 'close');
    // A chunked body that grows over the limit is cut while it streams; nothing is stored.
    const big = randomData(1_200_000);
    const streamed = await fetch(`${server.base}/up/huge3.bin`, {
      method: 'PUT',
      body: new ReadableStream({ start: (c) => (c.enqueue(big), c.close()) }),
      duplex: 'half',
    } as RequestInit).catch(() => undefined);
    if (streamed) {
      assert.equal(streamed.status, 413);
      await streamed.arrayBuffer().catch(() => undefined);
    }
    await assert.rejects(fs.stat(path.join(server.root, 'up/huge3.bin')));
    await eventually(async () => (await temporaries(server.root)).length === 0);
  });

  it('a refusal reaches curl before it sends the body (Expect: 100-continue)', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'f.bin');
    await fs.writeFile(file, randomData(200_000));
    let res = await curl(['-T', file, '-o', '/dev/null', '-w', '%{http_code} %{size_upload}', `${server.base}/up/curl.bin`]);
    assert.equal(res.stdout.toString(), '201 200000');
    res = await curl(['-T', file, '-o', '/dev/null', '-w', '%{http_code} %{size_upload}', `${server.base}/up/curl.bin`]);
    assert.equal(res.stdout.toString(), '409 0', 'the body was not sent');
    res = await curl(['--fail', '-T', file, `${server.base}/up/curl.bin`]);
    assert.equal(res.code, 22);
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('a client that goes away mid-body stores nothing', async () => {
    const socket = net.connect(server.httpPort, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write('PUT /up/cut.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n');
    socket.write(randomData(5000));
    await eventually(async () => (await temporaries(server.root)).length === 1, 3000, 'the upload to start');
    socket.destroy();
    await eventually(async () => (await temporaries(server.root)).length === 0, 3000, 'the temporary to go');
    await assert.rejects(fs.stat(path.join(server.root, 'up/cut.bin')));
  });
});

describe('http: quota', () => {
  it('over the quota is 507 before the body is read', async () => {
    const server = await startHttp({ quota: 10_000 });
    try {
      const res = await rawRequest(server.httpPort, 'PUT /q.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\nExpect: 100-continue\r\n\r\n');
      assert.equal(res.status, 507);
      assert.equal(res.headers['ferry-error'], 'QUOTA');
    } finally {
      await server.stop();
    }
  });
});

describe('http: delete, move, mkdir', () => {
  let server: HttpServer;
  before(async () => {
    server = await startHttp();
    for (const name of ['t/a.txt', 't/b.txt', 't/deep/c.txt']) {
      assert.equal((await fetch(`${server.base}/${name}`, { method: 'PUT', body: name })).status, 201);
    }
  });
  after(() => server.stop());

  it('MOVE renames a file (Destination path or URL), keeps its digest, refuses to clobber unless Overwrite: T', async () => {
    let res = await fetch(`${server.base}/t/a.txt`, { method: 'MOVE', headers: { Destination: '/t/moved/a2.txt' } });
    assert.equal(res.status, 201);
    await res.arrayBuffer();
    assert.equal(await (await fetch(`${server.base}/t/moved/a2.txt`)).text(), 't/a.txt');
    assert.equal((await fetch(`${server.base}/t/a.txt`)).status, 404);
    res = await fetch(`${server.base}/t/b.txt`, { method: 'MOVE', headers: { Destination: `${server.base}/t/moved/a2.txt` } });
    assert.equal(res.status, 409);
    await res.arrayBuffer();
    res = await fetch(`${server.base}/t/b.txt`, { method: 'MOVE', headers: { Destination: `${server.base}/t/moved/a2.txt`, Overwrite: 'T' } });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    const head = await fetch(`${server.base}/t/moved/a2.txt`, { method: 'HEAD' });
    assert.equal(head.headers.get('repr-digest'), `sha-256=:${sha256b64(Buffer.from('t/b.txt'))}:`);
    for (const [destination, status] of [
      ['/../outside.txt', 400],
      ['/%2e%2e/outside.txt', 400],
      ['/.ferry/x', 400],
      ['/t/moved/a2.txt/inside', 409],
      ['', 400],
    ] as const) {
      res = await fetch(`${server.base}/t/moved/a2.txt`, { method: 'MOVE', headers: destination === '' ? {} : { Destination: destination } });
      assert.equal(res.status, status, destination);
      await res.arrayBuffer();
    }
    res = await fetch(`${server.base}/t/nothing.txt`, { method: 'MOVE', headers: { Destination: '/t/x.txt' } });
    assert.equal(res.status, 404);
    await res.arrayBuffer();
  });

  it('MOVE renames a folder, not into itself', async () => {
    let res = await fetch(`${server.base}/t/deep`, { method: 'MOVE', headers: { Destination: '/t/deep/inner' } });
    assert.equal(res.status, 409);
    await res.arrayBuffer();
    res = await fetch(`${server.base}/t/deep/`, { method: 'MOVE', headers: { Destination: '/t/shallow/' } });
    assert.equal(res.status, 201);
    await res.arrayBuffer();
    assert.equal(await (await fetch(`${server.base}/t/shallow/c.txt`)).text(), 't/deep/c.txt');
  });

  it('MKCOL and PUT /folder/ make folders; DELETE removes files, folders only with ?recursive=1', async () => {
    let res = await fetch(`${server.base}/made/one`, { method: 'MKCOL' });
    assert.equal(res.status, 201);
    await res.arrayBuffer();
    assert.ok((await fs.stat(path.join(server.root, 'made/one'))).isDirectory());
    res = await fetch(`${server.base}/made/one`, { method: 'MKCOL' });
    assert.equal(res.status, 409);
    await res.arrayBuffer();
    res = await fetch(`${server.base}/made/two/`, { method: 'PUT' });
    assert.equal(res.status, 201);
    await res.arrayBuffer();
    res = await fetch(`${server.base}/t/moved/a2.txt`, { method: 'DELETE' });
    assert.equal(res.status, 204);
    res = await fetch(`${server.base}/t/moved/a2.txt`, { method: 'DELETE' });
    assert.equal(res.status, 404);
    await res.arrayBuffer();
    res = await fetch(`${server.base}/t`, { method: 'DELETE' });
    assert.equal(res.status, 409);
    await res.arrayBuffer();
    res = await fetch(`${server.base}/t/?recursive=1`, { method: 'DELETE' });
    assert.equal(res.status, 204);
    res = await fetch(`${server.base}/`, { method: 'DELETE' });
    assert.equal(res.status, 409);
    await res.arrayBuffer();
    res = await fetch(`${server.base}/x`, { method: 'PROPFIND' });
    assert.equal(res.status, 405);
    assert.match(res.headers.get('allow') ?? '', /MOVE/);
    await res.arrayBuffer();
    assert.deepEqual(await visibleTree(server.root), ['made/', 'made/one/', 'made/two/']);
  });
});

describe('http: tokens', () => {
  let server: HttpServer;
  before(async () => {
    server = await startHttp({ tokens: TokenSet.parse(`${WRITE} write\n${READ} read\n`), authThrottle: { freeFailures: 1000 } });
  });
  after(() => server.stop());

  it('no token 401 with WWW-Authenticate: Bearer; a wrong one 401 invalid_token; read tokens only read (403)', async () => {
    let res = await fetch(`${server.base}/`);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="ferry"');
    await res.arrayBuffer();
    res = await fetch(`${server.base}/`, { headers: { Authorization: 'Bearer wrong-token-000000000000' } });
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /invalid_token/);
    await res.arrayBuffer();
    res = await fetch(`${server.base}/f.txt`, { method: 'PUT', body: 'x', headers: { Authorization: `Bearer ${READ}` } });
    assert.equal(res.status, 403);
    assert.equal(res.headers.get('ferry-error'), 'READ_ONLY');
    await res.arrayBuffer();
    res = await fetch(`${server.base}/f.txt`, { method: 'PUT', body: 'x', headers: { Authorization: `Bearer ${WRITE}` } });
    assert.equal(res.status, 201);
    await res.arrayBuffer();
    res = await fetch(`${server.base}/f.txt`, { headers: { Authorization: `Bearer ${READ}` } });
    assert.equal(await res.text(), 'x');
    for (const method of ['DELETE', 'MKCOL', 'MOVE']) {
      res = await fetch(`${server.base}/f.txt`, { method, headers: { Authorization: `Bearer ${READ}`, Destination: '/g.txt' } });
      assert.equal(res.status, 403, method);
      await res.arrayBuffer();
    }
    // The page's cookie reads, but never writes (another site could make a browser send it).
    res = await fetch(`${server.base}/f.txt`, { headers: { Cookie: `ferry-token=${WRITE}` } });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    res = await fetch(`${server.base}/f.txt`, { method: 'DELETE', headers: { Cookie: `ferry-token=${WRITE}` } });
    assert.equal(res.status, 401);
    await res.arrayBuffer();
    // tus needs a write token too.
    res = await fetch(`${server.base}/.ferry/tus/`, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '1', Authorization: `Bearer ${READ}` } });
    assert.equal(res.status, 403);
    await res.arrayBuffer();
  });

  it('a refused upload is refused before its body (401 to curl with nothing sent)', async () => {
    const res = await curl(['-T', '/etc/hostname', '-o', '/dev/null', '-w', '%{http_code} %{size_upload}', `${server.base}/h.txt`]);
    assert.equal(res.stdout.toString(), '401 0');
  });
});

describe('http: limits and deadlines', () => {
  it('connections over --max-per-ip are refused with 503', async () => {
    const server = await startHttp({ maxPerIp: 1 });
    try {
      const held = net.connect(server.httpPort, '127.0.0.1');
      await new Promise((resolve) => held.once('connect', resolve));
      await eventually(() => server.server.storage !== undefined);
      const res = await rawRequest(server.httpPort, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.equal(res.status, 503);
      held.destroy();
    } finally {
      await server.stop();
    }
  });

  it('a stalled upload is closed after the idle timeout on the server clock; nothing is stored', async () => {
    const clock = new ManualClock();
    const server = await startHttp({ clock, idleTimeoutMs: 60_000 });
    try {
      const socket = net.connect(server.httpPort, '127.0.0.1');
      const closed = new Promise<Buffer>((resolve) => {
        const chunks: Buffer[] = [];
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.on('error', () => undefined);
        socket.on('close', () => resolve(Buffer.concat(chunks)));
      });
      await new Promise((resolve) => socket.once('connect', resolve));
      socket.write('PUT /stall.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n');
      socket.write(randomData(100));
      await eventually(async () => (await temporaries(server.root)).length === 1, 3000, 'the upload to start');
      clock.advance(59_000);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.ok(!socket.destroyed, 'still open before the timeout');
      clock.advance(2_000);
      await closed;
      await eventually(async () => (await temporaries(server.root)).length === 0, 3000, 'the temporary to go');
      await assert.rejects(fs.stat(path.join(server.root, 'stall.bin')));
    } finally {
      await server.stop();
    }
  });

  it('with --tls the same certificate serves HTTPS', async () => {
    const server = await startHttp({ tls: true });
    try {
      const res = await curl(['-k', '-T', '/etc/hostname', '-o', '/dev/null', '-w', '%{http_code}', `${server.base}/tls.txt`]);
      assert.equal(res.stdout.toString(), '201');
      const got = await curl(['-k', `${server.base}/tls.txt`]);
      assert.equal(got.stdout.toString(), await fs.readFile('/etc/hostname', 'utf8'));
      const fingerprint = await curl(['-k', '-v', '-o', '/dev/null', `${server.base}/tls.txt`]);
      // The door picks by its own order, AES-128-GCM first (curl offers AES-256 first).
      assert.match(fingerprint.stderr, /SSL connection using TLSv1\.3 \/ TLS_AES_128_GCM_SHA256/);
      const plain = await curl(['-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${server.httpPort}/tls.txt`]);
      assert.notEqual(plain.stdout.toString(), '200');
    } finally {
      await server.stop();
    }
  });
});

