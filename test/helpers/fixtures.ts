import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { createServer, type FerryServer, type ListeningAddress, type ServerOptions } from '../../src/index.js';

/** A fresh temporary folder, removed by the returned cleanup. */
export async function tempDir(prefix = 'ferry-test-'): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
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
