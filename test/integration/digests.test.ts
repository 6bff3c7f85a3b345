import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect, WireErrorCode } from '../../src/index.js';
import { digestOf, EMPTY_DIGEST } from '../../src/io/digest.js';
import { encodeMessage, HelloFlag, PutFlag, ServerFlag, type MessageOf } from '../../src/protocol/index.js';
import { startFakeServer } from '../helpers/fake-server.js';
import { assertDigest, digestHex, randomData, sha256, startServer, tempDir, type TestServer } from '../helpers/fixtures.js';
import { RawPeer } from '../helpers/raw-peer.js';

/** Issue 11: the digest is agreed in the handshake (PROTOCOL.md §11); every algorithm verifies end to end. */
describe('digest negotiation', () => {
  let server: TestServer;
  let local: string;

  before(async () => {
    server = await startServer();
    local = await tempDir();
  });
  after(async () => {
    await server.stop();
    await fs.rm(local, { recursive: true, force: true });
  });

  function helloOf(peer: RawPeer): MessageOf<'SERVER_HELLO'> {
    return peer.messages.find((m) => m.type === 'SERVER_HELLO') as MessageOf<'SERVER_HELLO'>;
  }

  it('agrees BLAKE3 by default and verifies uploads, downloads and listings with it', async () => {
    const client = await connect(server.address);
    try {
      const data = randomData(3 * 1024 * 1024 + 17);
      const put = await client.put(data, 'b3/one.bin');
      assert.equal(put.algorithm, 'blake3');
      assert.equal(put.digest, digestHex('blake3', data));
      const file = path.join(local, 'one.bin');
      const got = await client.get('b3/one.bin', file);
      assert.equal(got.algorithm, 'blake3');
      assertDigest(got, data);
      assert.ok((await fs.readFile(file)).equals(data));
      const [entry] = await client.list('b3');
      assert.equal(entry!.algorithm, 'blake3');
      assert.equal(entry!.digest, digestHex('blake3', data));
    } finally {
      await client.close();
    }
  });

  it('a client asking for SHA-256 gets SHA-256 digests, also of files stored with BLAKE3', async () => {
    const data = randomData(100_000);
    const modern = await connect(server.address);
    await modern.put(data, 'mixed/a.bin');
    await modern.close();
    const classic = await connect({ ...server.address, digest: 'sha256' });
    try {
      const entry = await classic.stat('mixed/a.bin');
      assert.equal(entry.algorithm, 'sha256');
      assert.equal(entry.digest, sha256(data));
      const got = await classic.get('mixed/a.bin', path.join(local, 'a.bin'));
      assert.equal(got.digest, sha256(data));
      const put = await classic.put(data, 'mixed/b.bin');
      assert.equal(put.algorithm, 'sha256');
      assert.equal(put.digest, sha256(data));
    } finally {
      await classic.close();
    }
    // Both digests are now recorded: a BLAKE3 client sees its own for the SHA-256 upload.
    const again = await connect(server.address);
    assert.equal((await again.stat('mixed/b.bin')).digest, digestHex('blake3', data));
    await again.close();
  });

  it('a server run with digest sha256 never agrees BLAKE3', async () => {
    const plain = await startServer({ digest: 'sha256' });
    try {
      const client = await connect(plain.address);
      const data = randomData(5000);
      const put = await client.put(data, 'x.bin');
      assert.equal(put.algorithm, 'sha256');
      assert.equal(put.digest, sha256(data));
      await client.close();
      const peer = await RawPeer.connect(plain.address.port, { flags: HelloFlag.BLAKE3 });
      assert.equal(helloOf(peer).flags & ServerFlag.BLAKE3, 0);
      peer.socket.destroy();
    } finally {
      await plain.stop();
    }
  });

  it('only a version-4 HELLO can agree BLAKE3; a raw version-4 peer must send BLAKE3 digests', async () => {
    const v3 = await RawPeer.connect(server.address.port, { version: 3, flags: HelloFlag.BLAKE3 });
    assert.equal(helloOf(v3).flags & ServerFlag.BLAKE3, 0, 'version 3 knows no BLAKE3');
    v3.socket.destroy();

    const peer = await RawPeer.connect(server.address.port, { version: 4, flags: HelloFlag.BLAKE3 });
    assert.equal(helloOf(peer).flags & ServerFlag.BLAKE3, ServerFlag.BLAKE3);
    const body = Buffer.from('hello, blake3');
    peer.send({ type: 'PUT', id: 1, name: 'raw/wrong.txt', flags: 0, size: body.length });
    peer.write(body);
    peer.send({ type: 'PUT_END', id: 1, digest: digestOf('sha256', body) });
    const refused = (await peer.waitFor((m) => m.id === 1 && m.type !== 'PUT_READY')) as MessageOf<'ERROR'>;
    assert.equal(refused.type, 'ERROR');
    assert.equal(refused.code, WireErrorCode.INTEGRITY, 'a SHA-256 digest on a BLAKE3 connection stores nothing');
    peer.send({ type: 'PUT', id: 2, name: 'raw/right.txt', flags: PutFlag.AWAIT_READY, size: body.length });
    const ready = (await peer.waitFor((m) => m.id === 2)) as MessageOf<'PUT_READY'>;
    assert.ok(ready.prefixDigest.equals(EMPTY_DIGEST.blake3), 'the empty prefix is BLAKE3 of nothing');
    peer.write(body);
    peer.send({ type: 'PUT_END', id: 2, digest: digestOf('blake3', body) });
    const stored = (await peer.waitFor((m) => m.id === 2 && m.type !== 'PUT_READY')) as MessageOf<'PUT_OK'>;
    assert.equal(stored.type, 'PUT_OK');
    assert.ok(stored.entry.digest.equals(digestOf('blake3', body)));
    peer.socket.destroy();
    await assert.rejects(fs.stat(path.join(server.root, 'raw/wrong.txt')));
  });

  it('an upload cut on a SHA-256 connection resumes on a BLAKE3 one and is verified', async () => {
    const data = randomData(4 * 1024 * 1024);
    const file = path.join(local, 'resume.bin');
    await fs.writeFile(file, data);
    const peer = await RawPeer.connect(server.address.port, { version: 4 });
    peer.send({ type: 'PUT', id: 1, name: 'resume.bin', flags: PutFlag.AWAIT_READY, size: data.length });
    await peer.waitFor((m) => m.type === 'PUT_READY');
    peer.write(data.subarray(0, 1_500_000));
    await new Promise<void>((resolve) => peer.socket.end(resolve));
    await peer.waitClosed();
    const partials = path.join(server.root, '.ferry', 'partial');
    for (let i = 0; i < 100 && (await fs.readdir(partials)).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    const client = await connect(server.address);
    try {
      const result = await client.put(file, 'resume.bin');
      assert.equal(result.algorithm, 'blake3');
      assert.ok(result.resumedFrom > 0, 'continued the kept bytes');
      assertDigest(result, data);
      assert.ok((await fs.readFile(path.join(server.root, 'resume.bin'))).equals(data));
    } finally {
      await client.close();
    }
  });

  it('the client refuses a server that picks BLAKE3 it did not offer', async () => {
    const fake = await startFakeServer(() => undefined, {
      onHello: (socket, hello) => {
        if (hello.type !== 'HELLO') return;
        socket.write(encodeMessage({ type: 'SERVER_HELLO', id: 0, version: hello.version, serverName: 'pushy', maxFileSize: 1024, flags: ServerFlag.BLAKE3 }));
      },
    });
    try {
      await assert.rejects(connect({ port: fake.port, timeoutMs: 5000, digest: 'sha256' }), (e: { code?: string; message?: string }) => e.code === 'PROTOCOL' && /BLAKE3/.test(e.message ?? ''));
    } finally {
      await fake.close();
    }
  });
});

describe('ferry hash', () => {
  const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

  function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  it('prints algorithm:hex like ferry stat, BLAKE3 by default and SHA-256 on request', async () => {
    const dir = await tempDir();
    try {
      const data = randomData(2 * 1024 * 1024 + 3);
      const file = path.join(dir, 'f.bin');
      await fs.writeFile(file, data);
      const b3 = await run(['hash', file]);
      assert.equal(b3.code, 0, b3.stderr);
      assert.equal(b3.stdout, `blake3:${digestHex('blake3', data)}  ${file}\n`);
      const sha = await run(['hash', '--digest', 'sha256', file]);
      assert.equal(sha.stdout, `sha256:${sha256(data)}  ${file}\n`);
      const missing = await run(['hash', path.join(dir, 'nope')]);
      assert.equal(missing.code, 1);
      assert.equal(missing.stderr.trim().split('\n').length, 1, missing.stderr);
      assert.match(missing.stderr, /cannot read .*nope: no such file/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
