import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import assert from 'node:assert/strict';
import { connect, createServer, type ConnectOptions, type FerryServer, type ListeningAddress, type ServerOptions } from '../../src/index.js';
import { digestOf, type DigestAlgorithm } from '../../src/io/digest.js';

/** A fresh temporary folder, removed by the returned cleanup. */
export async function tempDir(prefix = 'ferry-test-'): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Hex digest of `data` in `algorithm` (what a transfer on a BLAKE3 or SHA-256 connection reports). */
export function digestHex(algorithm: DigestAlgorithm, data: Buffer): string {
  return digestOf(algorithm, data).toString('hex');
}

/** The result or entry carries the digest of `data`, in the algorithm it names. */
export function assertDigest(reported: { digest: string; algorithm: DigestAlgorithm }, data: Buffer, message?: string): void {
  assert.equal(reported.digest, digestHex(reported.algorithm, data), message);
}

export async function sha256File(file: string): Promise<string> {
  return sha256(await fs.readFile(file));
}

export interface TestServer {
  server: FerryServer;
  address: ListeningAddress;
  root: string;
  stop(): Promise<void>;
}

/** A real server on 127.0.0.1 with an ephemeral port and a temporary root; silent logs. */
export async function startServer(options: ServerOptions = {}): Promise<TestServer> {
  const root = options.root ?? (await tempDir('ferry-root-'));
  const server = createServer({ host: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }), ...options, root });
  const address = await server.listen();
  return {
    server,
    address,
    root: server.storage.root,
    stop: async () => {
      await server.close(500);
      await fs.rm(root, { recursive: true, force: true });
    },
  };
}

export function randomData(size: number): Buffer {
  return randomBytes(size);
}

/** Every path under `dir` (relative), files and folders, sorted. */
export async function treeOf(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(sub: string): Promise<void> {
    for (const entry of await fs.readdir(path.join(dir, sub), { withFileTypes: true })) {
      const rel = sub === '' ? entry.name : `${sub}/${entry.name}`;
      out.push(entry.isDirectory() ? `${rel}/` : rel);
      if (entry.isDirectory()) await walk(rel);
    }
  }
  await walk('');
  return out.sort();
}

/** Names visible in the store: everything outside `.ferry/`. */
export async function visibleTree(root: string): Promise<string[]> {
  return (await treeOf(root)).filter((p) => !p.startsWith('.ferry/'));
}

/** Files left in the upload temporaries folder. */
export async function temporaries(root: string): Promise<string[]> {
  return fs.readdir(path.join(root, '.ferry', 'tmp'));
}

/** Polls `check` until it returns true or `ms` passes. */
export async function eventually(check: () => Promise<boolean> | boolean, ms = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A file outside every server root that no test may touch: hostile tests check it after each case. */
export interface Sentinel {
  dir: string;
  file: string;
  assertUntouched(): Promise<void>;
  cleanup(): Promise<void>;
}

const SENTINEL_TEXT = 'sentinel: must stay exactly like this\n';

export async function makeSentinel(): Promise<Sentinel> {
  const dir = await tempDir('ferry-sentinel-');
  const file = path.join(dir, 'sentinel');
  await fs.writeFile(file, SENTINEL_TEXT);
  const { mtimeMs } = await fs.stat(file);
  return {
    dir,
    file,
    assertUntouched: async () => {
      assert.equal(await fs.readFile(file, 'utf8'), SENTINEL_TEXT, 'the sentinel outside the root changed');
      assert.equal((await fs.stat(file)).mtimeMs, mtimeMs, 'the sentinel outside the root was rewritten');
      assert.deepEqual(await fs.readdir(dir), ['sentinel'], 'something was written beside the sentinel');
    },
    cleanup: () => fs.rm(dir, { recursive: true, force: true }),
  };
}

/**
 * After every abuse: the sentinel is untouched, no upload temporary is left, and a normal
 * client (with `options`: TLS, token) can still put, get and remove a file.
 */
export async function assertHealthy(server: TestServer, sentinel: Sentinel, options: ConnectOptions = {}): Promise<void> {
  await sentinel.assertUntouched();
  await eventually(async () => (await temporaries(server.root)).length === 0, 3000, 'temporaries to be removed');
  const client = await connect({ ...server.address, timeoutMs: 5000, ...options });
  try {
    const data = randomData(1234);
    const name = `health/${Math.random().toString(36).slice(2)}.bin`;
    assertDigest(await client.put(data, name), data);
    const back: Buffer[] = [];
    const { Writable } = await import('node:stream');
    await client.get(name, new Writable({ write: (chunk: Buffer, _e, done) => (back.push(chunk), done()) }));
    assert.ok(Buffer.concat(back).equals(data));
    await client.remove(name);
  } finally {
    await client.close();
  }
  await sentinel.assertUntouched();
}
