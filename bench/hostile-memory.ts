// `npm run bench:memory`: the server's memory under hostile load (issue 9), on 127.0.0.1.
// Starts a real `ferry serve` child and reads its VmRSS (/proc) after each scenario:
//   1,000 idle connections (HELLO done, then silence)
//   100 slow readers (each GETs a 256 MiB file and never reads)
//   one connection pipelining 100,000 STATs and never reading the replies
// Prints a Markdown table (pasted into bench/RESULTS.md).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { FERRY_CLI } from './lib/context.js';
import { encodeMessage, PROTOCOL_VERSION } from '../src/protocol/index.js';

const MiB = 1024 * 1024;

function rss(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? 0) * 1024;
}

async function settled(pid: number): Promise<number> {
  let peak = rss(pid);
  let stableSince = Date.now();
  const deadline = Date.now() + 20_000;
  while (Date.now() - stableSince < 1500 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const now = rss(pid);
    if (now > peak + 128 * 1024) stableSince = Date.now();
    peak = Math.max(peak, now);
  }
  return peak;
}

function startServer(root: string): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FERRY_CLI, 'serve', '--port', '0', '--root', root, '--max-connections', '2000', '--max-per-ip', '2000'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const onData = (data: Buffer): void => {
      output += data.toString();
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(output);
      if (match) resolve({ child, port: Number(match[1]) });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`server exited ${code}: ${output}`)));
  });
}

async function connectAndGreet(port: number, paused: boolean): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port });
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => undefined);
  if (paused) socket.pause();
  else socket.on('data', () => undefined);
  socket.write(encodeMessage({ type: 'HELLO', id: 0, version: PROTOCOL_VERSION, clientName: 'bench', flags: 0 }));
  return socket;
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'ferry-memory-bench-'));
  const root = path.join(work, 'store');
  mkdirSync(root);
  const big = await open(path.join(root, 'big.bin'), 'w');
  await big.truncate(256 * MiB); // sparse: the page cache, not the disk, serves it
  await big.close();
  const { child, port } = await startServer(root);
  const pid = child.pid!;
  const rows: string[] = [];
  const row = (what: string, before: number, after: number, count: number): void => {
    const grown = after - before;
    rows.push(`| ${what} | ${(before / MiB).toFixed(1)} | ${(after / MiB).toFixed(1)} | ${(grown / MiB).toFixed(1)} | ${((grown / count) / 1024).toFixed(1)} KiB |`);
  };
  try {
    // Warm up: the big file's digest is computed once, by the first GET.
    const warm = await connectAndGreet(port, false);
    warm.write(encodeMessage({ type: 'STAT', id: 1, name: 'big.bin' }));
    await new Promise((resolve) => warm.once('data', resolve));
    await new Promise((resolve) => setTimeout(resolve, 2000));
    warm.destroy();

    let before = await settled(pid);
    const idle = [];
    for (let i = 0; i < 1000; i++) idle.push(await connectAndGreet(port, false));
    row('1,000 idle connections', before, await settled(pid), 1000);
    for (const socket of idle) socket.destroy();

    before = await settled(pid);
    const slow = [];
    for (let i = 0; i < 100; i++) {
      const socket = await connectAndGreet(port, true);
      socket.write(encodeMessage({ type: 'GET', id: 1, name: 'big.bin', offset: 0 }));
      slow.push(socket);
    }
    row('100 slow readers (GET 256 MiB, never read)', before, await settled(pid), 100);
    for (const socket of slow) socket.destroy();

    before = await settled(pid);
    const pipelining = await connectAndGreet(port, true);
    const stats = Buffer.concat(Array.from({ length: 100_000 }, (_, i) => encodeMessage({ type: 'STAT', id: i + 1, name: 'big.bin' })));
    pipelining.write(stats);
    row('1 connection, 100,000 pipelined STATs never read', before, await settled(pid), 1);
    pipelining.destroy();
  } finally {
    child.kill('SIGTERM');
    rmSync(work, { recursive: true, force: true });
  }
  console.log('| scenario | server RSS before (MiB) | after (MiB) | growth (MiB) | per connection |');
  console.log('|---|---|---|---|---|');
  for (const line of rows) console.log(line);
}

await main();
