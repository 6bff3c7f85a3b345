// `npm run bench:many-files -- [options]` (or `node dist/bench/many-files.js` after a build): ferry's peak RSS on a tree of many small files (issue 12's goal:
// client and server < 100 MB at 100,000 files). On 127.0.0.1 only, through the bin
// (dist/bin/cli/main.js, which applies the young-generation cap), one fresh `ferry serve`:
//   1. `ferry put -r TREE` into an empty store     2. `ferry get -r TREE -o OUT` of it
// For each phase: the client's peak RSS (VmHWM polled from /proc until it exits) and the
// server's (VmHWM, reset between phases through /proc/PID/clear_refs). With --sample, each
// process also records its peak rss / heapUsed / external / arrayBuffers
// (process.memoryUsage every 20 ms, from a preload), to tell which kind of memory peaks.
//   node dist/bench/many-files.js [--files 100000] [--per-folder 1000] [--size 1024]
//                                 [--rounds 1] [--sample] [--snapshot-at MB] [--keep]
// --snapshot-at MB: a process whose RSS first passes MB writes a heap snapshot into the work
// dir (kept, with its path printed; implies --keep). Everything made is removed at the end.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { FERRY_CLI } from './lib/context.js';

const MiB = 1024 * 1024;

interface Options {
  files: number;
  perFolder: number;
  size: number;
  rounds: number;
  sample: boolean;
  snapshotAtMb: number | undefined;
  keep: boolean;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { files: 100_000, perFolder: 1000, size: 1024, rounds: 1, sample: false, snapshotAtMb: undefined, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): number => {
      const n = Number(argv[++i]);
      if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${arg} needs a positive whole number`);
      return n;
    };
    if (arg === '--files') options.files = value();
    else if (arg === '--per-folder') options.perFolder = value();
    else if (arg === '--size') options.size = value();
    else if (arg === '--rounds') options.rounds = value();
    else if (arg === '--sample') options.sample = true;
    else if (arg === '--snapshot-at') options.snapshotAtMb = value();
    else if (arg === '--keep') options.keep = true;
    else throw new Error(`unknown argument ${arg}`);
  }
  if (options.snapshotAtMb !== undefined) options.keep = true;
  return options;
}

/** The preload given to every ferry process with --sample: peaks of process.memoryUsage, written at exit. */
function samplerSource(snapshotAtMb: number | undefined): string {
  return `'use strict';
const { writeFileSync } = require('node:fs');
const v8 = require('node:v8');
const out = process.env.FERRY_BENCH_SAMPLES;
const snapshotAt = ${snapshotAtMb === undefined ? 'Infinity' : snapshotAtMb * MiB};
const peak = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
let atPeakRss;
let snapshot;
const sample = () => {
  const m = process.memoryUsage();
  for (const key of Object.keys(peak)) peak[key] = Math.max(peak[key], m[key]);
  if (m.rss >= peak.rss) atPeakRss = m;
  if (snapshot === undefined && m.rss >= snapshotAt) snapshot = v8.writeHeapSnapshot(out + '.' + process.pid + '.heapsnapshot');
};
setInterval(sample, 20).unref();
const write = () => {
  sample();
  writeFileSync(out + '.' + process.pid + '.json', JSON.stringify({ peak, atPeakRss, snapshot }));
};
process.on('exit', write);
for (const signal of ['SIGTERM', 'SIGINT']) process.once(signal, () => { write(); process.exit(0); });
`;
}

function status(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Number(match?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** Resets the process's VmHWM to its current RSS (Linux ≥ 4.0). */
function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

function makeTree(dir: string, files: number, perFolder: number, size: number): void {
  const data = Buffer.allocUnsafe(size);
  for (let i = 0; i < files; i++) {
    const folder = path.join(dir, `d${String(Math.floor(i / perFolder)).padStart(4, '0')}`);
    if (i % perFolder === 0) mkdirSync(folder, { recursive: true });
    randomFillSync(data);
    writeFileSync(path.join(folder, `f${String(i).padStart(6, '0')}.bin`), data);
  }
}

function startServer(root: string, env: NodeJS.ProcessEnv, logFile: string): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const log = openSync(logFile, 'w');
    // Its log (a line per batch) goes to a file; the "listening on" line is looked for there.
    const child = spawn(process.execPath, [FERRY_CLI, 'serve', '--host', '127.0.0.1', '--port', '0', '--root', root], { stdio: ['ignore', log, log], env });
    closeSync(log);
    const timer = setInterval(() => {
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(readFileSync(logFile, 'utf8'));
      if (match) {
        clearInterval(timer);
        resolve({ child, port: Number(match[1]) });
      }
    }, 50);
    child.on('exit', (code) => {
      clearInterval(timer);
      reject(new Error(`ferry serve exited ${code}: ${readFileSync(logFile, 'utf8').slice(0, 2000)}`));
    });
  });
}

/** Runs one client command; its peak RSS (VmHWM read every 20 ms while it runs) and wall time. */
async function runClient(args: string[], env: NodeJS.ProcessEnv): Promise<{ peak: number; seconds: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, [FERRY_CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  let peak = 0;
  const timer = setInterval(() => (peak = Math.max(peak, status(child.pid!, 'VmHWM'))), 20);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearInterval(timer);
  if (code !== 0) throw new Error(`ferry ${args.join(' ')} exited ${code}: ${stderr}`);
  return { peak, seconds: (performance.now() - started) / 1000 };
}

function samples(work: string): { pid: string; peak: Record<string, number>; atPeakRss?: Record<string, number>; snapshot?: string }[] {
  return readdirSync(work)
    .filter((f) => /^samples\.\d+\.json$/.test(f))
    .map((f) => ({ pid: f.split('.')[1]!, ...(JSON.parse(readFileSync(path.join(work, f), 'utf8')) as { peak: Record<string, number> }) }));
}

const mb = (bytes: number): string => (bytes / MiB).toFixed(1);

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const work = mkdtempSync(path.join(os.tmpdir(), 'ferry-many-files-'));
  let server: ChildProcess | undefined;
  try {
    const tree = path.join(work, 'tree');
    const store = path.join(work, 'store');
    mkdirSync(store);
    console.error(`making ${options.files} × ${options.size} B in folders of ${options.perFolder} under ${work} …`);
    makeTree(tree, options.files, options.perFolder, options.size);
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    if (options.sample) {
      const sampler = path.join(work, 'sampler.cjs');
      writeFileSync(sampler, samplerSource(options.snapshotAtMb));
      env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --require ${sampler}`.trim();
      env.FERRY_BENCH_SAMPLES = path.join(work, 'samples');
    }
    const started = await startServer(store, env, path.join(work, 'serve.log'));
    server = started.child;
    const address = `127.0.0.1:${started.port}`;
    const rows: string[] = ['| round | phase | seconds | files/s | client peak RSS MB | server peak RSS MB |', '|---|---|---|---|---|---|'];
    for (let round = 1; round <= options.rounds; round++) {
      rmSync(path.join(store, 'tree'), { recursive: true, force: true });
      const out = path.join(work, 'out');
      rmSync(out, { recursive: true, force: true });
      for (const [phase, args] of [
        ['put -r', ['put', '-r', tree, '-s', address, '--quiet']],
        ['get -r', ['get', '-r', 'tree', '-o', out, '-s', address, '--quiet']],
      ] as const) {
        resetPeak(server.pid!);
        const client = await runClient([...args], env);
        const serverPeak = status(server.pid!, 'VmHWM');
        rows.push(`| ${round} | ${phase} | ${client.seconds.toFixed(1)} | ${Math.round(options.files / client.seconds)} | ${mb(client.peak)} | ${mb(serverPeak)} |`);
        console.error(rows.at(-1));
      }
    }
    server.kill('SIGTERM');
    await new Promise((resolve) => server!.once('exit', resolve));
    server = undefined;
    console.log(`${options.files.toLocaleString('en-US')} × ${options.size} B, ${options.perFolder} per folder, through ${path.relative(process.cwd(), FERRY_CLI)}:\n`);
    console.log(rows.join('\n'));
    if (options.sample) {
      console.log('\nPeaks of process.memoryUsage() (MB) per process (the server, then each client in turn):\n');
      console.log('| pid | rss | heapUsed | heapTotal | external | arrayBuffers | at peak rss: heapUsed / external / arrayBuffers | snapshot |');
      console.log('|---|---|---|---|---|---|---|---|');
      for (const s of samples(work)) {
        const at = s.atPeakRss;
        const atText = at ? `${mb(at.heapUsed!)} / ${mb(at.external!)} / ${mb(at.arrayBuffers!)}` : '';
        console.log(`| ${s.pid} | ${mb(s.peak.rss!)} | ${mb(s.peak.heapUsed!)} | ${mb(s.peak.heapTotal!)} | ${mb(s.peak.external!)} | ${mb(s.peak.arrayBuffers!)} | ${atText} | ${s.snapshot ?? ''} |`);
      }
    }
  } finally {
    server?.kill('SIGKILL');
    if (options.keep) console.error(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
