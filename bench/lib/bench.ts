// Cases, repetitions (alternating tools), samples and row statistics.
import { startCpuMeter } from './cpu.js';
import { firstLines, isAborting, runShell, type RunResult } from './proc.js';

/** CPU seconds of one run: the client command (/usr/bin/time -v) and the server side (/proc). */
export interface CpuSample {
  clientUserS: number | null;
  clientSysS: number | null;
  serverUserS: number | null;
  serverSysS: number | null;
  /** False when the server's session processes were still alive 5 s after the client exited. */
  serverSettled?: boolean;
}

export interface Sample {
  ok: boolean;
  wallS: number;
  /** Peak RSS of the client command (largest process), kB. */
  rssKb: number | null;
  /** Peak RSS of a second process measured with it (nc's listener), kB. */
  rss2Kb?: number | null;
  cpu?: CpuSample;
  error?: string;
}

export type Direction = 'upload' | 'download' | 'write';

export interface Case {
  /** Row label, e.g. "scp (aes128-gcm)". */
  tool: string;
  direction: Direction;
  /** The exact command, as shown in RESULTS.md (display form). */
  command: string;
  /** The shell command to run, when the default runner is used. */
  cmd?: string;
  isFerry?: boolean;
  /** The ferry row the peers of this direction are compared with. */
  reference?: boolean;
  /** The long-lived server this client talks to, whose CPU is measured over each timed run. */
  serverPid?: number;
  bytes: number;
  files: number;
  timeoutMs: number;
  /** Set when the case cannot run at all (peer failed to start, …): recorded, not run. */
  skip?: { status: 'failed' | 'unsupported'; reason: string };
  /** Untimed, before each repetition (remove previous results, …). */
  prepare?(): Promise<void>;
  /** Custom timed run (default: runShell(cmd)). */
  run?(): Promise<Sample>;
  /** Untimed check of the result: null if correct, else what is wrong. */
  verify(): Promise<string | null>;
  /** Untimed, after each repetition. */
  cleanup?(): Promise<void>;
  /** Returns a reason if a failed run means "not supported yet" (a usage error) rather than a failure. */
  unsupported?(r: RunResult): string | null;
}

export interface Row {
  tool: string;
  direction: Direction;
  command: string;
  isFerry: boolean;
  reference: boolean;
  bytes: number;
  files: number;
  samples: Sample[];
  status: 'ok' | 'partial' | 'failed' | 'unsupported';
  reason?: string;
  medianS?: number;
  minS?: number;
  maxS?: number;
  peakRssKb?: number | null;
  peakRss2Kb?: number | null;
  /** Successful runs / runs. */
  okRuns?: number;
  runs?: number;
  /** Medians over the successful runs (each field on its own). */
  cpu?: CpuSample;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  const mid = Math.floor(n / 2);
  return n % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** A usage error from the ferry CLI: exit 2, or commander's "unknown option/command". */
export function ferryUsageError(r: RunResult): string | null {
  const text = `${r.stderr}\n${r.stdout}`;
  if (r.code === 2 || /unknown (option|command)|too many arguments|missing required argument|not (yet )?(supported|implemented)/i.test(text)) {
    return `not yet supported: ${firstLines(text, 1) || `exit ${r.code}`}`;
  }
  return null;
}

export function describeFailure(r: RunResult): string {
  if (r.timedOut) return `timed out after ${r.wallS.toFixed(0)} s`;
  const why = r.code !== null ? `exit ${r.code}` : `signal ${r.signal ?? '?'}`;
  const msg = firstLines(r.stderr || r.stdout, 2);
  return msg ? `${why}: ${msg}` : why;
}

async function runOnce(c: Case): Promise<{ sample: Sample; unsupported?: string }> {
  if (c.run) return { sample: await c.run() };
  const meter = c.serverPid !== undefined ? await startCpuMeter(c.serverPid) : undefined;
  const r = await runShell(c.cmd ?? c.command, { timeoutMs: c.timeoutMs });
  const server = meter ? await meter.stop() : null;
  const cpu: CpuSample = {
    clientUserS: r.userS,
    clientSysS: r.sysS,
    serverUserS: server?.userS ?? null,
    serverSysS: server?.sysS ?? null,
    ...(server && !server.settled ? { serverSettled: false } : {}),
  };
  if (r.code !== 0 || r.timedOut) {
    const uns = !r.timedOut && c.unsupported ? c.unsupported(r) : null;
    return { sample: { ok: false, wallS: r.wallS, rssKb: r.maxRssKb, cpu, error: uns ?? describeFailure(r) }, ...(uns ? { unsupported: uns } : {}) };
  }
  return { sample: { ok: true, wallS: r.wallS, rssKb: r.maxRssKb, cpu } };
}

/**
 * Runs every case `reps` times, alternating tools: each repetition runs all cases once, in
 * forward order on even repetitions and reverse order on odd ones. `sync` runs (untimed)
 * before each timed run so no tool pays for the previous one's write-back.
 */
export async function runCases(title: string, cases: Case[], reps: number, log: (m: string) => void): Promise<Row[]> {
  const rows: Row[] = cases.map((c) => ({
    tool: c.tool,
    direction: c.direction,
    command: c.command,
    isFerry: !!c.isFerry,
    reference: !!c.reference,
    bytes: c.bytes,
    files: c.files,
    samples: [],
    status: c.skip ? c.skip.status : 'ok',
    ...(c.skip ? { reason: c.skip.reason } : {}),
  }));
  for (let rep = 0; rep < reps; rep++) {
    const order = cases.map((_, i) => i);
    if (rep % 2 === 1) order.reverse();
    for (const i of order) {
      const c = cases[i] as Case;
      const row = rows[i] as Row;
      if (isAborting()) break;
      if (row.status === 'unsupported' || (c.skip && row.status === 'failed')) continue;
      let sample: Sample;
      let uns: string | undefined;
      try {
        if (c.prepare) await c.prepare();
        await runShell('sync', { timeoutMs: 120_000, timeV: false });
        const res = await runOnce(c);
        sample = res.sample;
        uns = res.unsupported;
        if (sample.ok) {
          const bad = await c.verify();
          if (bad) sample = { ...sample, ok: false, error: `verification failed: ${bad}` };
        }
      } catch (err) {
        sample = { ok: false, wallS: NaN, rssKb: null, error: `harness error: ${(err as Error).message}` };
      }
      if (isAborting()) break;
      try {
        if (c.cleanup) await c.cleanup();
      } catch (err) {
        log(`  cleanup of ${c.tool} failed: ${(err as Error).message}`);
      }
      if (uns) {
        row.status = 'unsupported';
        row.reason = uns;
        log(`  ${title} | ${c.tool} ${c.direction}: ${uns}`);
        continue;
      }
      row.samples.push(sample);
      log(
        `  ${title} | rep ${rep + 1}/${reps} | ${c.tool} ${c.direction}: ` +
          (sample.ok ? `${sample.wallS.toFixed(3)} s` : `FAILED ${sample.error ?? ''}`) +
          (sample.rssKb ? `, ${(sample.rssKb / 1024).toFixed(0)} MB` : ''),
      );
    }
  }
  for (const row of rows) finishRow(row);
  return rows;
}

export function finishRow(row: Row): void {
  if (row.status === 'unsupported' || (row.samples.length === 0 && row.status === 'failed')) return;
  const ok = row.samples.filter((s) => s.ok);
  const bad = row.samples.filter((s) => !s.ok);
  if (ok.length === 0) {
    row.status = 'failed';
    row.reason = bad[0]?.error ?? 'no successful run';
    return;
  }
  row.okRuns = ok.length;
  row.runs = row.samples.length;
  row.status = bad.length ? 'partial' : 'ok';
  if (bad.length) row.reason = `${bad.length} of ${row.samples.length} runs failed: ${bad[0]?.error ?? ''}`;
  const t = ok.map((s) => s.wallS);
  row.medianS = median(t);
  row.minS = Math.min(...t);
  row.maxS = Math.max(...t);
  const rss = ok.map((s) => s.rssKb).filter((x): x is number => typeof x === 'number');
  row.peakRssKb = rss.length ? Math.max(...rss) : null;
  const rss2 = ok.map((s) => s.rss2Kb).filter((x): x is number => typeof x === 'number');
  row.peakRss2Kb = rss2.length ? Math.max(...rss2) : null;
  const cpuMedian = (pick: (c: CpuSample) => number | null): number | null => {
    const xs = ok.map((s) => (s.cpu ? pick(s.cpu) : null)).filter((x): x is number => typeof x === 'number');
    return xs.length ? median(xs) : null;
  };
  if (ok.some((s) => s.cpu)) {
    row.cpu = {
      clientUserS: cpuMedian((c) => c.clientUserS),
      clientSysS: cpuMedian((c) => c.clientSysS),
      serverUserS: cpuMedian((c) => c.serverUserS),
      serverSysS: cpuMedian((c) => c.serverSysS),
      ...(ok.some((s) => s.cpu?.serverSettled === false) ? { serverSettled: false } : {}),
    };
  }
}
