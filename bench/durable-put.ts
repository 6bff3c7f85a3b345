// Durable put vs --no-fsync put (issue 11): one 1 GiB file through the real CLI, two servers
// (`ferry serve` default and `--no-fsync`) kept running, the puts alternated pair by pair (the
// order flipped every pair) so a drift of the shared machine hits both sides alike.
// Wall seconds per put (client spawn to exit), the servers' CPU seconds per put (from
// /proc/PID/stat), min / median / max and the ratio durable ÷ --no-fsync of each pair.
//
//   npm run build && node dist/bench/durable-put.js [--pairs 7] [--size-mib 1024] [--dir DIR]
//
// Extra environment for the durable server only: --server-env K=V (repeatable).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/cli/main.js');
const TICKS = 100; // USER_HZ on Linux

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

function serverEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  process.argv.forEach((a, i) => {
    if (a === '--server-env') {
      const [k, ...v] = (process.argv[i + 1] ?? '').split('=');
      if (k) env[k] = v.join('=');
    }
  });
  return env;
}

function cpuSeconds(pid: number): number {
  // Fields after the command name: utime is the 14th, stime the 15th of the whole line.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

interface Server {
  child: ChildProcess;
  addr: string;
  root: string;
}

async function startServer(root: string, noFsync: boolean, env: Record<string, string>): Promise<Server> {
  const argv = [CLI, 'serve', '--host', '127.0.0.1', '--port', '0', '--root', root];
  if (noFsync) argv.push('--no-fsync');
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let output = '';
  const addr = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve printed no "listening on" in 20 s: ${output}`)), 20_000);
    const onData = (data: Buffer): void => {
      output += data.toString();
      const m = /listening on (127\.0\.0\.1:\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', () => reject(new Error(`serve exited: ${output}`)));
  });
  child.stdout!.resume();
  child.stderr!.resume();
  return { child, addr, root };
}

function put(server: Server, file: string, name: string): { wall: number; serverCpu: number } {
  const cpuBefore = cpuSeconds(server.child.pid!);
  const start = process.hrtime.bigint();
  const result = spawnSync(process.execPath, [CLI, 'put', file, '-s', server.addr, '--as', name, '-q'], { encoding: 'utf8' });
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  if (result.status !== 0) throw new Error(`put failed (${result.status}): ${result.stderr}`);
  const serverCpu = cpuSeconds(server.child.pid!) - cpuBefore;
  rmSync(path.join(server.root, name)); // outside the timing; the next put is a fresh file
  return { wall, serverCpu };
}

function summary(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  return `min ${sorted[0]!.toFixed(3)}  median ${median.toFixed(3)}  max ${sorted[sorted.length - 1]!.toFixed(3)}`;
}

async function main(): Promise<void> {
  const pairs = Number(arg('--pairs', '7'));
  const sizeMib = Number(arg('--size-mib', '1024'));
  const dir = mkdtempSync(path.join(arg('--dir', os.tmpdir()), 'ferry-durable-'));
  const servers: Server[] = [];
  try {
    const file = path.join(dir, 'payload.bin');
    const fd = openSync(file, 'w');
    const block = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < sizeMib; i++) writeSync(fd, randomFillSync(block));
    closeSync(fd);
    spawnSync('sync');
    const durable = await startServer(path.join(dir, 'durable'), false, serverEnv());
    const fast = await startServer(path.join(dir, 'nofsync'), true, {});
    servers.push(durable, fast);
    put(durable, file, 'warmup'); // warm-up, not counted
    put(fast, file, 'warmup');
    const d: Array<{ wall: number; serverCpu: number }> = [];
    const f: Array<{ wall: number; serverCpu: number }> = [];
    for (let i = 0; i < pairs; i++) {
      if (i % 2 === 0) {
        d.push(put(durable, file, `run-${i}`));
        f.push(put(fast, file, `run-${i}`));
      } else {
        f.push(put(fast, file, `run-${i}`));
        d.push(put(durable, file, `run-${i}`));
      }
    }
    console.log(`${sizeMib} MiB put, ${pairs} pairs, durable server env ${JSON.stringify(serverEnv())}`);
    console.log(`durable    wall s:      ${summary(d.map((r) => r.wall))}`);
    console.log(`--no-fsync wall s:      ${summary(f.map((r) => r.wall))}`);
    console.log(`ratio durable/no-fsync: ${summary(d.map((r, i) => r.wall / f[i]!.wall))}`);
    console.log(`durable    server cpu s: ${summary(d.map((r) => r.serverCpu))}`);
    console.log(`--no-fsync server cpu s: ${summary(f.map((r) => r.serverCpu))}`);
  } finally {
    for (const s of servers) s.child.kill('SIGTERM');
    await Promise.all(servers.map((s) => new Promise((r) => (s.child.exitCode !== null ? r(null) : s.child.once('exit', r)))));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
