// CLI start-up time: `ferry --version` and `ferry ls` (against a running server), with
// `node -e 0` as the floor (issue 12: each ≤ 1.15× the floor). The commands are spawned
// directly (no shell) in one alternating loop — every round runs each command once, the order
// rotating — so a drift of the shared machine hits all of them alike.
import { spawn } from 'node:child_process';
import { median } from '../lib/bench.js';
import { display, ferryCmd, type Ctx } from '../lib/context.js';
import { firstLines, runShell, sh } from '../lib/proc.js';
import { ferrySeed, startFerryPair, stopFerry, type ServerStat } from './common.js';

export interface ColdRow {
  name: string;
  command: string;
  /** The floor row (`node -e 0`) the others are compared with. */
  floor?: boolean;
  /** A yardstick shown beside ferry's rows, not a target (a bare Node net client). */
  yardstick?: boolean;
  medianMs?: number;
  meanMs?: number;
  minMs?: number;
  maxMs?: number;
  runs?: number;
  rssKb?: number | null;
  error?: string;
}

export interface ColdResult {
  tool: string;
  rows: ColdRow[];
  notes: string[];
  servers: ServerStat[];
}

/** Wall milliseconds from spawn to exit of argv (stdout/stderr discarded); NaN if it failed. */
function timeOnce(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: 'ignore', env });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', () => {
      clearTimeout(timer);
      resolve(NaN);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code === 0 ? Number(process.hrtime.bigint() - t0) / 1e6 : NaN);
    });
  });
}

export async function coldStart(ctx: Ctx, smallFile: string): Promise<ColdResult> {
  const notes: string[] = [];
  const env = process.env;
  const servers: ServerStat[] = [];
  const pair = await startFerryPair(ctx, 'coldstart', { nofsync: false, fsync: true });
  const s = pair.fsync;
  const cli = [process.execPath, ctx.ferryCli];
  const cmds: Array<{ name: string; argv: string[]; floor?: boolean; yardstick?: boolean }> = [
    { name: 'node -e 0 (floor)', argv: [process.execPath, '-e', '0'], floor: true },
    { name: 'ferry --version', argv: [...cli, '--version'] },
  ];
  if (typeof s === 'string') notes.push(`ferry ls not measured: ${s}`);
  else {
    const seed = await ferrySeed(ctx, s, ['put', smallFile, '--as', 'cold/one.bin', '--overwrite']);
    if (seed.error) notes.push(seed.error);
    cmds.push({ name: 'ferry ls --json (1 file stored)', argv: [...cli, 'ls', '-s', s.addr, '--json'] });
    // What any Node client pays before its first request: node:net loaded, a TCP connection
    // made and closed. Shows how much of `ferry ls` over the floor is Node's, not ferry's.
    const [host, port] = [s.addr.slice(0, s.addr.lastIndexOf(':')), s.addr.slice(s.addr.lastIndexOf(':') + 1)];
    const connectOnly = `const s=require('node:net').connect(${Number(port)},${JSON.stringify(host)},()=>s.end());s.resume();s.on('error',()=>process.exit(1))`;
    cmds.push({ name: 'node: connect + close (a bare net client)', argv: [process.execPath, '-e', connectOnly], yardstick: true });
  }
  const rows: ColdRow[] = [];
  // first: each command must work at all, and its peak RSS (/usr/bin/time -v)
  const working: Array<{ argv: string[]; row: ColdRow }> = [];
  for (const c of cmds) {
    const shown = c.argv[1] === ctx.ferryCli ? display(ctx, ferryCmd(ctx, c.argv.slice(2))) : c.argv.map(sh).join(' ');
    const r = await runShell(c.argv.map(sh).join(' '), { timeoutMs: 30_000, env });
    const row: ColdRow = { name: c.name, command: shown, ...(c.floor ? { floor: true } : {}), ...(c.yardstick ? { yardstick: true } : {}) };
    rows.push(row);
    if (r.code !== 0) row.error = `exit ${r.code}: ${firstLines(r.stderr || r.stdout, 2)}`;
    else {
      row.rssKb = r.maxRssKb;
      working.push({ argv: c.argv, row });
    }
  }
  const runs = ctx.sizes.coldRuns;
  const warmup = 3;
  const times = working.map(() => [] as number[]);
  for (let round = 0; round < warmup + runs; round++) {
    for (let k = 0; k < working.length; k++) {
      const i = (k + round) % working.length;
      const w = working[i] as (typeof working)[number];
      const ms = await timeOnce(w.argv, env);
      if (round >= warmup && Number.isFinite(ms)) (times[i] as number[]).push(ms);
    }
  }
  working.forEach((w, i) => {
    const t = times[i] as number[];
    if (t.length === 0) w.row.error = 'every timed run failed';
    else Object.assign(w.row, { medianMs: median(t), meanMs: t.reduce((a, b) => a + b, 0) / t.length, minMs: Math.min(...t), maxMs: Math.max(...t), runs: t.length });
  });
  await stopFerry(ctx, s, 'ferry serve (cold-start ls target)', servers);
  const tool = `an alternating loop: ${runs} rounds after ${warmup} warm-up rounds, each round spawning every command once (no shell, order rotating), wall time spawn to exit`;
  return { tool, rows, notes, servers };
}
