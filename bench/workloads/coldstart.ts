// CLI start-up time: `ferry --version` and `ferry ls` (against a running server), with
// `node -e 0` as the floor. hyperfine when installed, else our own repeated timing.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { median } from '../lib/bench.js';
import { display, ferryCmd, type Ctx } from '../lib/context.js';
import { firstLines, runShell, sh } from '../lib/proc.js';
import { has } from '../peers/install.js';
import { ferrySeed, startFerryPair, stopFerry, type ServerStat } from './common.js';

export interface ColdRow {
  name: string;
  command: string;
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

interface HyperfineJson {
  results: Array<{ command: string; mean: number; median: number; min: number; max: number; times?: number[] }>;
}

export async function coldStart(ctx: Ctx, smallFile: string): Promise<ColdResult> {
  const notes: string[] = [];
  const servers: ServerStat[] = [];
  const pair = await startFerryPair(ctx, 'coldstart', { nofsync: false, fsync: true });
  const s = pair.fsync;
  const cmds: Array<{ name: string; cmd: string }> = [
    { name: 'node -e 0 (floor)', cmd: [process.execPath, '-e', '0'].map(sh).join(' ') },
    { name: 'ferry --version', cmd: ferryCmd(ctx, ['--version']) },
  ];
  if (typeof s === 'string') notes.push(`ferry ls not measured: ${s}`);
  else {
    const seed = await ferrySeed(ctx, s, ['put', smallFile, '--as', 'cold/one.bin', '--overwrite']);
    if (seed.error) notes.push(seed.error);
    cmds.push({ name: 'ferry ls --json (1 file stored)', cmd: ferryCmd(ctx, ['ls', '-s', s.addr, '--json']) });
  }
  const rows: ColdRow[] = [];
  // first: each command must work at all, and its peak RSS
  const working: typeof cmds = [];
  for (const c of cmds) {
    const r = await runShell(c.cmd, { timeoutMs: 30_000 });
    if (r.code !== 0) rows.push({ name: c.name, command: display(ctx, c.cmd), error: `exit ${r.code}: ${firstLines(r.stderr || r.stdout, 2)}` });
    else working.push(c);
    if (r.code === 0) rows.push({ name: c.name, command: display(ctx, c.cmd), rssKb: r.maxRssKb });
  }
  const runs = ctx.sizes.coldRuns;
  let tool = `own timing: ${runs} runs each after 3 warm-up runs, wall time spawn to exit`;
  const byName = new Map(rows.map((r) => [r.name, r]));
  if (has('/usr/bin/hyperfine') && working.length) {
    const json = path.join(ctx.T, 'hyperfine.json');
    const hcmd = `hyperfine -N --warmup 3 --runs ${runs} --export-json ${sh(json)} ${working.map((c) => sh(c.cmd)).join(' ')}`;
    const r = await runShell(hcmd, { timeoutMs: 600_000, timeV: false });
    if (r.code === 0) {
      tool = `hyperfine -N --warmup 3 --runs ${runs}`;
      const parsed = JSON.parse(readFileSync(json, 'utf8')) as HyperfineJson;
      parsed.results.forEach((res, i) => {
        const c = working[i];
        const row = c ? byName.get(c.name) : undefined;
        if (!row) return;
        Object.assign(row, { medianMs: res.median * 1000, meanMs: res.mean * 1000, minMs: res.min * 1000, maxMs: res.max * 1000, runs: res.times?.length ?? runs });
      });
    } else {
      notes.push(`hyperfine failed (${firstLines(r.stderr, 1)}); used own timing`);
    }
  }
  for (const c of working) {
    const row = byName.get(c.name);
    if (!row || row.medianMs !== undefined) continue;
    for (let i = 0; i < 3; i++) await runShell(c.cmd, { timeoutMs: 30_000, timeV: false });
    const t: number[] = [];
    for (let i = 0; i < runs; i++) {
      const r = await runShell(c.cmd, { timeoutMs: 30_000, timeV: false });
      if (r.code === 0) t.push(r.wallS * 1000);
    }
    if (t.length) Object.assign(row, { medianMs: median(t), meanMs: t.reduce((a, b) => a + b, 0) / t.length, minMs: Math.min(...t), maxMs: Math.max(...t), runs: t.length });
  }
  await stopFerry(ctx, s, 'ferry serve (cold-start ls target)', servers);
  return { tool, rows, notes, servers };
}
