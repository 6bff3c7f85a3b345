import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { connect, TokenSet, WireErrorCode, type FerryError } from '../../src/index.js';
import { PutFlag, type Message } from '../../src/protocol/index.js';
import { runCli, startServeProcess } from '../helpers/cli.js';
import {
  assertHealthy,
  makeSentinel,
  randomData,
  sha256,
  startServer,
  tempDir,
  visibleTree,
  type Sentinel,
  type TestServer,
} from '../helpers/fixtures.js';
import { RawPeer } from '../helpers/raw-peer.js';
import { loadServerCredentials } from '../../src/transport/tls.js';

const WRITE_TOKEN = 'w-0123456789abcdef0123456789abcdef';
const READ_TOKEN = 'r-0123456789abcdef0123456789abcdef';
const WRONG_TOKEN = 'x-not-a-token-at-all-0123456789';
const TOKENS_FILE = `# ferry tokens\n${WRITE_TOKEN} write\n\n${READ_TOKEN}   read  \n`;

const errorCode = (m: Message | undefined): number | undefined => (m?.type === 'ERROR' ? m.code : undefined);

describe('auth tokens', () => {
  let server: TestServer;
  let sentinel: Sentinel;
  let dir: string;
  const logLines: string[] = [];

  before(async () => {
    sentinel = await makeSentinel();
    dir = await tempDir();
    await fs.writeFile(path.join(dir, 'tokens'), TOKENS_FILE);
    server = await startServer({
      tokens: path.join(dir, 'tokens'),
      authThrottle: { baseDelayMs: 150, maxDelayMs: 300 },
      logger: pino({ level: 'debug' }, { write: (line: string) => void logLines.push(line) }),
    });
  });
  after(async () => {
    await server.stop();
    await sentinel.cleanup();
    await fs.rm(dir, { recursive: true, force: true });
  });

  const healthy = (): Promise<void> => assertHealthy(server, sentinel, { token: WRITE_TOKEN });

  it('parses the tokens file strictly and never echoes a token in its errors', () => {
    assert.equal(TokenSet.parse(TOKENS_FILE).size, 2);
    assert.equal(TokenSet.parse(TOKENS_FILE).check(READ_TOKEN), 'read');
    assert.equal(TokenSet.parse(TOKENS_FILE).check(WRONG_TOKEN), undefined);
    for (const [text, problem] of [
      ['short write\n', /shorter than 16/],
      [`${WRITE_TOKEN} admin\n`, /"read" or "write"/],
      [`${WRITE_TOKEN}\n`, /expected "<token> <read\|write>"/],
      [`${WRITE_TOKEN} write\n${WRITE_TOKEN} read\n`, /line 2: the same token appears twice/],
      ['# only a comment\n', /holds no token/],
    ] as const) {
      assert.throws(() => TokenSet.parse(text, 'tokens'), (e: Error) => problem.test(e.message) && !e.message.includes(WRITE_TOKEN));
    }
  });

  it('a client without a token fails at connect with "authentication required"', async () => {
    await assert.rejects(connect(server.address), (e: FerryError) => e.code === 'AUTH_REQUIRED' && /^authentication required/.test(e.message));
  });

  it('refuses every request before AUTH, an upload included (its body is read and dropped)', async () => {
    const peer = await RawPeer.connect(server.address.port);
    const hello = peer.messages[0];
    assert.ok(hello?.type === 'SERVER_HELLO' && (hello.flags & 1) === 1, 'SERVER_HELLO says tokens are required');
    const body = randomData(5000);
    peer.send({ type: 'PUT', id: 1, name: 'early.bin', flags: 0, size: body.length });
    peer.write(body);
    peer.send({ type: 'PUT_END', id: 1, digest: Buffer.from(sha256(body), 'hex') });
    peer.send({ type: 'PUT', id: 2, name: 'early2.bin', flags: PutFlag.AWAIT_READY, size: 10 });
    assert.equal(errorCode(await peer.waitFor((m) => m.id === 1)), WireErrorCode.AUTH_REQUIRED);
    assert.equal(errorCode(await peer.waitFor((m) => m.id === 2)), WireErrorCode.AUTH_REQUIRED);
    for (const [id, message] of [
      [3, { type: 'LIST', id: 3, prefix: '', flags: 1 }],
      [4, { type: 'STAT', id: 4, name: 'x' }],
      [5, { type: 'GET', id: 5, name: 'x', offset: 0 }],
      [6, { type: 'DELETE', id: 6, name: 'x', flags: 0 }],
    ] as const) {
      peer.send(message);
      assert.equal(errorCode(await peer.waitFor((m) => m.id === id)), WireErrorCode.AUTH_REQUIRED, message.type);
    }
    assert.deepEqual(await visibleTree(server.root), []);
    // The connection is still usable: authenticate, then upload.
    peer.send({ type: 'AUTH', id: 7, token: WRITE_TOKEN });
    assert.equal((await peer.waitFor((m) => m.id === 7)).type, 'OK');
    peer.send({ type: 'PUT', id: 8, name: 'after.bin', flags: 0, size: body.length });
    peer.write(body);
    peer.send({ type: 'PUT_END', id: 8, digest: Buffer.from(sha256(body), 'hex') });
    assert.equal((await peer.waitFor((m) => m.id === 8)).type, 'PUT_OK');
    peer.send({ type: 'DELETE', id: 9, name: 'after.bin', flags: 0 });
    assert.equal((await peer.waitFor((m) => m.id === 9)).type, 'OK');
    peer.destroy();
    await healthy();
  });

  it('a read token may list, stat and get, but not put or remove ("read-only token")', async () => {
    const writer = await connect({ ...server.address, token: WRITE_TOKEN });
    await writer.put(Buffer.from('shared'), 'shared.txt');
    const reader = await connect({ ...server.address, token: READ_TOKEN });
    assert.equal((await reader.list()).length, 1);
    assert.equal((await reader.stat('shared.txt')).size, 6);
    await assert.rejects(reader.put(Buffer.from('no'), 'no.txt'), (e: FerryError) => e.code === 'READ_ONLY' && /^read-only token/.test(e.message));
    await assert.rejects(reader.put(randomData(2 * 1024 * 1024), 'big-no.bin'), (e: FerryError) => e.code === 'READ_ONLY');
    await assert.rejects(reader.remove('shared.txt'), (e: FerryError) => e.code === 'READ_ONLY');
    assert.equal((await reader.stat('shared.txt')).size, 6, 'the connection stays usable');
    await reader.close();
    await writer.remove('shared.txt');
    await writer.close();
    await healthy();
  });

  it('three wrong tokens close the connection; later attempts from that address are slowed', async () => {
    const peer = await RawPeer.connect(server.address.port);
    for (let id = 1; id <= 3; id++) {
      peer.send({ type: 'AUTH', id, token: `${WRONG_TOKEN}${id}` });
      assert.equal(errorCode(await peer.waitFor((m) => m.id === id, 8000)), WireErrorCode.AUTH_FAILED);
    }
    await peer.waitClosed();
    const again = await RawPeer.connect(server.address.port);
    const started = Date.now();
    again.send({ type: 'AUTH', id: 1, token: WRONG_TOKEN });
    await again.waitFor((m) => m.id === 1, 8000);
    assert.ok(Date.now() - started >= 120, `the verdict came after ${Date.now() - started} ms`);
    again.destroy();
    await assert.rejects(connect({ ...server.address, token: WRONG_TOKEN }), (e: FerryError) => e.code === 'AUTH_FAILED' && e.message === 'token not accepted by the server');
    await healthy();
  });

  it('closes a connection that says HELLO but never AUTH, at the handshake deadline', async () => {
    const quick = await startServer({ tokens: TokenSet.parse(TOKENS_FILE), handshakeTimeoutMs: 300 });
    try {
      const peer = await RawPeer.connect(quick.address.port);
      peer.send({ type: 'STAT', id: 1, name: 'x' });
      assert.equal(errorCode(await peer.waitFor((m) => m.id === 1)), WireErrorCode.AUTH_REQUIRED);
      await peer.waitClosed(3000);
      assert.equal(errorCode(peer.messages.at(-1)), WireErrorCode.TIMEOUT);
      await assertHealthy(quick, sentinel, { token: WRITE_TOKEN });
    } finally {
      await quick.stop();
    }
  });

  it('never writes a token to the log', () => {
    const log = logLines.join('');
    assert.ok(log.includes('token not accepted') && log.includes('authenticated'), 'auth events are logged');
    for (const token of [WRITE_TOKEN, READ_TOKEN, WRONG_TOKEN]) assert.ok(!log.includes(token), 'a token appeared in the log');
  });

  it('the CLI takes the token from FERRY_TOKEN or --token-file and prints one line on refusal', async () => {
    const file = path.join(dir, 'upload.txt');
    await fs.writeFile(file, 'cli bytes');
    await fs.writeFile(path.join(dir, 'read.token'), `${READ_TOKEN}\n`);
    const s = `127.0.0.1:${server.address.port}`;
    const none = await runCli(['put', file, '-s', s], { env: { FERRY_TOKEN: '' } });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /^ferry: authentication required[^\n]*\n$/);
    const readOnly = await runCli(['put', file, '-s', s, '--token-file', path.join(dir, 'read.token')]);
    assert.equal(readOnly.code, 1);
    assert.match(readOnly.stderr, /^ferry: read-only token[^\n]*\n$/);
    const wrong = await runCli(['ls', '-s', s], { env: { FERRY_TOKEN: WRONG_TOKEN } });
    assert.equal(wrong.code, 1);
    assert.equal(wrong.stderr, 'ferry: token not accepted by the server\n');
    const ok = await runCli(['put', file, '-s', s, '--as', 'cli.txt', '-q'], { env: { FERRY_TOKEN: WRITE_TOKEN } });
    assert.equal(ok.code, 0, ok.stderr);
    const rm = await runCli(['rm', 'cli.txt', '-s', s, '-q'], { env: { FERRY_TOKEN: WRITE_TOKEN } });
    assert.equal(rm.code, 0, rm.stderr);
    for (const result of [none, readOnly, wrong]) assert.ok(!result.stderr.includes(WRITE_TOKEN) && !result.stderr.includes(READ_TOKEN));
    await healthy();
  });
});

describe('TLS', () => {
  let server: TestServer;
  let plain: TestServer;
  let sentinel: Sentinel;
  let config: string;
  let knownHosts: string;

  before(async () => {
    sentinel = await makeSentinel();
    config = await tempDir('ferry-xdg-');
    knownHosts = path.join(config, 'ferry', 'known_hosts');
    server = await startServer({ tls: true });
    plain = await startServer();
  });
  after(async () => {
    await server.stop();
    await plain.stop();
    await sentinel.cleanup();
    await fs.rm(config, { recursive: true, force: true });
  });

  it('creates a self-signed certificate once under <root>/.ferry/tls and keeps it', async () => {
    const fingerprint = server.server.tlsFingerprint;
    assert.match(fingerprint ?? '', /^SHA256:[A-Za-z0-9+/]{43}$/);
    const key = await fs.stat(path.join(server.root, '.ferry', 'tls', 'key.pem'));
    assert.equal(key.mode & 0o077, 0, 'the private key is private');
    const again = await startServer({ root: server.root, tls: true });
    assert.equal(again.server.tlsFingerprint, fingerprint);
    await again.server.close(200);
  });

  it('pins a fingerprint: the right one connects, a wrong one fails with one line', async () => {
    await assertHealthy(server, sentinel, { tls: { fingerprint: server.server.tlsFingerprint } });
    await assert.rejects(
      connect({ ...server.address, tls: { fingerprint: `SHA256:${'A'.repeat(43)}` } }),
      (e: FerryError) => /^server certificate fingerprint mismatch: /.test(e.message) && !e.message.includes('\n'),
    );
  });

  it('trusts on first use, then refuses loudly when the fingerprint changes', async () => {
    const seen: string[] = [];
    await assertHealthy(server, sentinel, { tls: { knownHosts, onNewHost: (i) => seen.push(i.fingerprint) } });
    assert.deepEqual(seen, [server.server.tlsFingerprint]);
    assert.match(await fs.readFile(knownHosts, 'utf8'), new RegExp(`^127\\.0\\.0\\.1:${server.address.port} SHA256:`));
    await assertHealthy(server, sentinel, { tls: { knownHosts, onNewHost: (i) => seen.push(i.fingerprint) } });
    assert.equal(seen.length, 1, 'remembered, not asked again');
    // Another server (another certificate) answering on a remembered address: an impostor.
    await fs.appendFile(knownHosts, `127.0.0.1:${server.address.port} SHA256:${'B'.repeat(43)}\n`);
    await assert.rejects(connect({ ...server.address, tls: { knownHosts } }), (e: FerryError) => /^server certificate fingerprint changed: /.test(e.message));
  });

  it('a plaintext client on the TLS port, and a TLS client on a plaintext port, fail promptly with one line', async () => {
    let started = Date.now();
    await assert.rejects(connect({ ...server.address, timeoutMs: 10_000 }), (e: FerryError) => /connect with --tls/.test(e.message) && !e.message.includes('\n'));
    assert.ok(Date.now() - started < 2000);
    started = Date.now();
    await assert.rejects(connect({ ...plain.address, tls: { knownHosts }, timeoutMs: 10_000 }), (e: FerryError) => /does not speak TLS/.test(e.message));
    assert.ok(Date.now() - started < 2000);
    await assertHealthy(server, sentinel, { tls: { fingerprint: server.server.tlsFingerprint } });
    await assertHealthy(plain, sentinel);
  });

  it('the client offers AES-128-GCM first; the server keeps another client\'s order', async () => {
    // A bare TLS server that takes the client's order and records what was agreed.
    const credentials = await loadServerCredentials(path.join(server.root, '.ferry'));
    const agreed: string[] = [];
    const bare = tls.createServer({ cert: credentials.cert, key: credentials.key, honorCipherOrder: false }, (socket) => {
      agreed.push(socket.getCipher().name);
      socket.destroy();
    });
    await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = bare.address() as AddressInfo;
      await assert.rejects(connect({ host: '127.0.0.1', port, tls: { fingerprint: credentials.fingerprint }, timeoutMs: 10_000 }));
      assert.deepEqual(agreed, ['TLS_AES_128_GCM_SHA256']);
    } finally {
      bare.close();
    }
    // ferry's server: a client that prefers AES-256 (OpenSSL's default order) gets AES-256.
    const cipher = await new Promise<string>((resolve, reject) => {
      const socket = tls.connect({ ...server.address, rejectUnauthorized: false, ciphers: 'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256' });
      socket.on('secureConnect', () => {
        resolve(socket.getCipher().name);
        socket.destroy();
      });
      socket.on('error', reject);
    });
    assert.equal(cipher, 'TLS_AES_256_GCM_SHA384');
  });

  it('refuses TLS older than 1.2', async () => {
    const error = await new Promise<Error | undefined>((resolve) => {
      const socket = tls.connect({ ...server.address, rejectUnauthorized: false, minVersion: 'TLSv1', maxVersion: 'TLSv1.1' });
      socket.on('secureConnect', () => {
        socket.destroy();
        resolve(undefined);
      });
      socket.on('error', (e) => resolve(e));
    });
    assert.ok(error, 'a TLS 1.1 handshake must fail');
  });

  it('ferry serve --tls prints its fingerprint; the CLI remembers it (XDG_CONFIG_HOME) and pins with --fingerprint', async () => {
    const root = await tempDir('ferry-root-');
    const xdg = await tempDir('ferry-xdg-');
    const serve = await startServeProcess(['--root', root, '--tls']);
    try {
      assert.match(serve.fingerprint ?? '', /^SHA256:/);
      const s = `127.0.0.1:${serve.port}`;
      const env = { XDG_CONFIG_HOME: xdg, FERRY_TOKEN: '' };
      const first = await runCli(['ls', '-s', s, '--tls'], { env });
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stderr, /first connection to 127\.0\.0\.1:\d+; its certificate fingerprint SHA256:\S+ is now remembered/);
      assert.ok((await fs.readFile(path.join(xdg, 'ferry', 'known_hosts'), 'utf8')).includes(serve.fingerprint!));
      const second = await runCli(['ls', '-s', s, '--tls'], { env });
      assert.doesNotMatch(second.stderr, /first connection/); // an empty store's listing says so on stderr
      const wrong = await runCli(['ls', '-s', s, '--fingerprint', `SHA256:${'C'.repeat(43)}`], { env });
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /^ferry: server certificate fingerprint mismatch: [^\n]*\n$/);
      const plainToTls = await runCli(['ls', '-s', s], { env });
      assert.equal(plainToTls.code, 1);
      assert.match(plainToTls.stderr, /^ferry: [^\n]*--tls[^\n]*\n$/);
    } finally {
      await serve.stop();
      await fs.rm(root, { recursive: true, force: true });
      await fs.rm(xdg, { recursive: true, force: true });
    }
  });
});

describe('TLS with a CA-signed certificate', () => {
  let server: TestServer;
  let sentinel: Sentinel;
  let dir: string;
  let caCert: string;
  let knownHosts: string;

  before(async () => {
    sentinel = await makeSentinel();
    dir = await tempDir('ferry-ca-');
    knownHosts = path.join(dir, 'known_hosts');
    const { generate } = await import('selfsigned');
    const ca = await generate([{ name: 'commonName', value: 'ferry test CA' }], {
      keyType: 'ec',
      algorithm: 'sha256',
      extensions: [
        { name: 'basicConstraints', cA: true },
        { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true },
      ],
    });
    caCert = ca.cert;
    const leaf = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
      keyType: 'ec',
      algorithm: 'sha256',
      ca: { key: ca.private, cert: ca.cert },
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] },
      ],
    });
    await fs.writeFile(path.join(dir, 'cert.pem'), leaf.cert);
    await fs.writeFile(path.join(dir, 'key.pem'), leaf.private);
    server = await startServer({ tls: { certFile: path.join(dir, 'cert.pem'), keyFile: path.join(dir, 'key.pem') } });
  });
  after(async () => {
    await server.stop();
    await sentinel.cleanup();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('a CA the client trusts vouches for the server; nothing is remembered', async () => {
    const seen: string[] = [];
    await assertHealthy(server, sentinel, { tls: { ca: caCert, knownHosts, onNewHost: (i) => seen.push(i.fingerprint) } });
    assert.deepEqual(seen, []);
    // A known_hosts that cannot be read (a folder here) does not matter when a CA vouches.
    await assertHealthy(server, sentinel, { tls: { ca: caCert, knownHosts: dir } });
    await assert.rejects(
      connect({ ...server.address, tls: { knownHosts: false } }),
      (e: FerryError) => /^the TLS certificate of [^\n]* is not trusted \([^\n]*\): pin it with --fingerprint SHA256:/.test(e.message),
    );
  });

  it('a remembered fingerprint that no longer matches: the trusted CA still vouches, without it the change is refused', async () => {
    // The server's certificate was renewed since 127.0.0.1:PORT was remembered with another one.
    await fs.writeFile(knownHosts, `127.0.0.1:${server.address.port} SHA256:${'D'.repeat(43)}\n`);
    await assertHealthy(server, sentinel, { tls: { ca: caCert, knownHosts } });
    await assert.rejects(connect({ ...server.address, tls: { knownHosts } }), (e: FerryError) => /^server certificate fingerprint changed: /.test(e.message));
    // Remembered as it is: accepted with or without the CA.
    await fs.writeFile(knownHosts, `127.0.0.1:${server.address.port} ${server.server.tlsFingerprint}\n`);
    await assertHealthy(server, sentinel, { tls: { knownHosts } });
    await assertHealthy(server, sentinel, { tls: { ca: caCert, knownHosts } });
  });
});
