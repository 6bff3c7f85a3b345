// `npm run bench:s3` (issue 14): ferry on its S3 backend beside plain SDK transfers (the
// `aws s3 cp` equivalent in peers/s3-sdk.ts), same run, alternating, on the S3 store named by
// S3_ENDPOINT, S3_BUCKET and AWS_* — `bash scripts/s3-local/with-s3.sh npm run bench:s3` starts a
// local Ceph RGW for it. Measures one 1 GiB random file (64 MiB with --quick) and 1,000 × 4 KiB
// files, up and down; every result is verified. Writes its section of bench/RESULTS.md.
// `--big10g` measures instead one 10 GiB `ferry put` to the end with ferry serve's peak RSS (the
// issue's memory goal) and writes its own section; it needs a store with ~11 GB free, not the
// shared test RGW (20 GB): see the section's text for how to start one.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from './lib/bench.js';
import { startCpuMeter } from './lib/cpu.js';
import { makeRandomFile, makeTree, manifest, sha256File, verifyFile, verifyTree } from './lib/data.js';
import { cleanupAll, procStatusKb, registerTempPath, runShell, sh, startDaemon, type Daemon } from './lib/proc.js';
import { rmrf } from './workloads/common.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(here, '..', '..');
const CLI = path.join(REPO, 'dist', 'bin', 'cli', 'main.js');
const SDK = path.join(here, 'peers', 's3-sdk.js');
const SECTION = '## S3 backend (issue 14)';
/** Starts with "## S3 backend" so bench/run.ts keeps it (keptSections) and bench:s3 leaves it alone. */
const BIG_SECTION = '## S3 backend: 10 GiB upload, server memory (issue 14)';
const BIG_SIZE = 10 * 1024 * 1024 * 1024;

interface Row {
  what: string;
  tool: string;
  command: string;
  wall: number[];
  cpu: number[];
  rssKb: number[];
  serverCpu: number[];
}

function log(message: string): void {
  console.log(`[bench:s3 ${new Date().toISOString().slice(11, 19)}] ${message}`);
}

async function startFerry(T: string, store: string): Promise<{ daemon: Daemon; addr: string }> {
  let resolvePort: (port: number) => void = () => undefined;
  const port = new Promise<number>((resolve) => (resolvePort = resolve));
  const argv = [process.execPath, CLI, 'serve', '--host', '127.0.0.1', '--port', '0', '--root', path.join(T, 'state'), '--store', store, '--s3-endpoint', process.env.S3_ENDPOINT!];
  const daemon = startDaemon('ferry-s3', argv, path.join(T, 'ferry-s3.log'), {
    onLine: (line) => {
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
      if (m?.[1]) resolvePort(Number(m[1]));
    },
  });
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`ferry serve --store ${store} did not start: ${daemon.output().slice(0, 300)}`)), 30_000).unref());
  return { daemon, addr: `127.0.0.1:${await Promise.race([port, timeout])}` };
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const reps = Number(/--reps[= ](\d+)/.exec(process.argv.join(' '))?.[1] ?? 3);
  if (!process.env.S3_ENDPOINT || !process.env.S3_BUCKET || !process.env.AWS_ACCESS_KEY_ID) {
    console.error('bench:s3: no S3 store: run it as `bash scripts/s3-local/with-s3.sh npm run bench:s3` or set S3_ENDPOINT, S3_BUCKET and AWS_*');
    process.exit(1);
  }
  delete process.env.NODE_EXTRA_CA_CERTS; // +130 ms per Node start here, an environment cost (see bench/RESULTS.md)
  const T = mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-s3-'));
  registerTempPath(T);
  if (process.argv.includes('--big10g')) {
    await bigUpload(T);
    await cleanupAll();
    return;
  }
  const bigSize = quick ? 64 * 1024 * 1024 : 1024 * 1024 * 1024;
  const big = path.join(T, 'big.bin');
  const tree = path.join(T, 'small');
  log(`making ${bigSize / 1024 / 1024} MiB and 1,000 × 4 KiB of random data`);
  await makeRandomFile(big, bigSize);
  await makeTree(tree, 1000, 4096);
  const bigWant = await sha256File(big);
  const treeWant = await manifest(tree);
  const prefix = `bench-${Date.now()}-${randomBytes(3).toString('hex')}/`;
  const store = `s3://${process.env.S3_BUCKET}/${prefix}ferry/`;
  const ferry = await startFerry(T, store);
  log(`ferry serve --store ${store} on ${ferry.addr}`);
  const f = (args: string[]): string => [process.execPath, CLI, ...args, '-s', ferry.addr, '--quiet'].map(sh).join(' ');
  const sdk = (args: string[]): string => [process.execPath, SDK, ...args].map(sh).join(' ');
  const down = path.join(T, 'down');
  mkdirSync(down);
  // A ferry put of what is already stored would only be skipped as identical: remove it first (untimed).
  const removeRemote = async (args: string[]): Promise<void> => void (await runShell(f(args), { timeoutMs: 300_000, timeV: false }));
  const cases: Array<{ what: string; tool: string; cmd: string; ferry: boolean; prepare?: () => unknown; verify: () => Promise<string | null> }> = [
    { what: 'upload 1 file', tool: 'ferry put', cmd: f(['put', big, '--as', 'big.bin']), ferry: true, prepare: () => removeRemote(['rm', 'big.bin']), verify: async () => null },
    { what: 'upload 1 file', tool: 'SDK multipart (aws s3 cp settings)', cmd: sdk(['put', big, `${prefix}sdk/big.bin`]), ferry: false, verify: async () => null },
    { what: 'download 1 file', tool: 'ferry get', cmd: f(['get', 'big.bin', '-o', path.join(down, 'ferry.bin')]), ferry: true, prepare: () => rmrf(path.join(down, 'ferry.bin')), verify: () => verifyFile(path.join(down, 'ferry.bin'), bigWant) },
    { what: 'download 1 file', tool: 'SDK ranged GETs (aws s3 cp settings)', cmd: sdk(['get', `${prefix}sdk/big.bin`, path.join(down, 'sdk.bin')]), ferry: false, prepare: () => rmrf(path.join(down, 'sdk.bin')), verify: () => verifyFile(path.join(down, 'sdk.bin'), bigWant) },
    { what: 'upload 1,000 × 4 KiB', tool: 'ferry put -r', cmd: f(['put', '-r', tree]), ferry: true, prepare: () => removeRemote(['rm', '-r', 'small']), verify: async () => null },
    { what: 'upload 1,000 × 4 KiB', tool: 'SDK PutObject × 1,000 (10 at once)', cmd: sdk(['put-tree', tree, `${prefix}sdk/small/`]), ferry: false, verify: async () => null },
    { what: 'download 1,000 × 4 KiB', tool: 'ferry get -r', cmd: f(['get', '-r', 'small', '-o', path.join(down, 'ferry-small')]), ferry: true, prepare: () => rmrf(path.join(down, 'ferry-small')), verify: () => verifyTree(path.join(down, 'ferry-small'), treeWant) },
    { what: 'download 1,000 × 4 KiB', tool: 'SDK GetObject × 1,000 (10 at once)', cmd: sdk(['get-tree', `${prefix}sdk/small/`, path.join(down, 'sdk-small')]), ferry: false, prepare: () => rmrf(path.join(down, 'sdk-small')), verify: () => verifyTree(path.join(down, 'sdk-small'), treeWant) },
  ];
  const rows = new Map<string, Row>();
  const failures: string[] = [];
  for (let rep = 0; rep < reps; rep++) {
    // Pairs alternate: ferry first on odd repetitions, the SDK first on even ones.
    for (let i = 0; i < cases.length; i += 2) {
      const pair = rep % 2 === 0 ? [cases[i]!, cases[i + 1]!] : [cases[i + 1]!, cases[i]!];
      for (const c of pair) {
        await c.prepare?.();
        await runShell('sync', { timeoutMs: 120_000, timeV: false });
        const meter = c.ferry ? await startCpuMeter(ferry.daemon.pid) : undefined;
        const r = await runShell(c.cmd, { timeoutMs: 900_000 });
        const server = await meter?.stop();
        const problem = r.code !== 0 ? `exit ${r.code}: ${r.stderr.trim().split('\n')[0]}` : await c.verify();
        const serverRss = c.ferry ? ` (ferry serve peak RSS so far ${Math.round(((await procStatusKb(ferry.daemon.pid, 'VmHWM')) ?? 0) / 1024)} MB)` : '';
        log(`${c.what} · ${c.tool}: ${r.wallS.toFixed(2)} s${serverRss}${problem ? ` FAILED (${problem})` : ''}`);
        if (problem) {
          failures.push(`${c.what} · ${c.tool}: ${problem}`);
          continue;
        }
        const key = `${c.what}|${c.tool}`;
        const row = rows.get(key) ?? { what: c.what, tool: c.tool, command: c.cmd.split(`${sh(process.execPath)} ${sh(CLI)}`).join('ferry').split(`${sh(process.execPath)} ${sh(SDK)}`).join('s3-sdk').split(T).join('$T'), wall: [], cpu: [], rssKb: [], serverCpu: [] };
        row.wall.push(r.wallS);
        row.cpu.push((r.userS ?? 0) + (r.sysS ?? 0));
        if (r.maxRssKb !== null) row.rssKb.push(r.maxRssKb);
        if (server) row.serverCpu.push(server.userS + server.sysS);
        rows.set(key, row);
      }
    }
  }
  const serverPeakKb = await procStatusKb(ferry.daemon.pid, 'VmHWM');
  await ferry.daemon.stop();
  await runShell(sdk(['delete-prefix', prefix]), { timeoutMs: 300_000, timeV: false });
  writeSection(render(rows, { quick, reps, bigSize, failures, serverPeakKb, endpoint: process.env.S3_ENDPOINT! }), quick);
  await cleanupAll();
}

/**
 * One 10 GiB `ferry put` through a fresh `ferry serve --store s3://…`, to the end: wall time,
 * the server's CPU and its peak RSS (VmHWM, the issue's goal: under 150 MB). The source is a
 * sparse file (zeros: no 10 GB of local disk; neither ferry nor the store compresses).
 */
async function bigUpload(T: string): Promise<void> {
  const file = path.join(T, 'big10g.bin');
  writeFileSync(file, '');
  truncateSync(file, BIG_SIZE);
  const prefix = `bench-big-${Date.now()}-${randomBytes(3).toString('hex')}/`;
  const ferry = await startFerry(T, `s3://${process.env.S3_BUCKET}/${prefix}`);
  log(`ferry serve on ${ferry.addr}: putting 10 GiB`);
  const idleKb = await procStatusKb(ferry.daemon.pid, 'VmRSS');
  const meter = await startCpuMeter(ferry.daemon.pid);
  const cmd = [process.execPath, CLI, 'put', file, '--as', 'big10g.bin', '-s', ferry.addr, '--quiet'].map(sh).join(' ');
  const r = await runShell(cmd, { timeoutMs: 3600_000 });
  const server = await meter.stop();
  const peakKb = await procStatusKb(ferry.daemon.pid, 'VmHWM');
  await ferry.daemon.stop();
  await runShell([process.execPath, SDK, 'delete-prefix', prefix].map(sh).join(' '), { timeoutMs: 300_000, timeV: false });
  const failed = r.code !== 0 ? `exit ${r.code}: ${r.stderr.trim().split('\n')[0]}` : undefined;
  const mb = (kb: number | null): string => (kb === null ? 'unknown' : `${Math.round(kb / 1024)} MB`);
  log(`10 GiB put: ${r.wallS.toFixed(1)} s, ferry serve peak RSS ${mb(peakKb)}${failed ? ` FAILED (${failed})` : ''}`);
  if (failed) throw new Error(`the 10 GiB put failed: ${failed}`);
  const lines = [
    BIG_SECTION,
    '',
    `\`npm run bench:s3 -- --big10g\`, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, against ${process.env.S3_ENDPOINT}: one \`ferry put\` of a 10 GiB file (sparse, zeros) through a fresh \`ferry serve --store s3://…\`, measured to the end. The shared test RGW (20 GB OSD) is too small: start one with a 40 GB OSD on other ports, e.g. \`S3_PORT=17580 MON_PORT=16889 MON2_PORT=13400 MS_PORT_MIN=16900 MS_PORT_MAX=16999 OSD_SIZE_GB=40 bash scripts/s3-local/start-s3.sh /tmp/ferry-s3-big\`, then \`FERRY_S3_DATA=/tmp/ferry-s3-big npm run bench:s3 -- --big10g\`.`,
    '',
    '| transfer | wall s | MiB/s | ferry serve CPU s | ferry serve RSS idle | ferry serve peak RSS | client peak RSS |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    `| ferry put 10 GiB | ${r.wallS.toFixed(1)} | ${(BIG_SIZE / 1048576 / r.wallS).toFixed(1)} | ${server ? (server.userS + server.sysS).toFixed(1) : '–'} | ${mb(idleKb)} | **${mb(peakKb)}** | ${mb(r.maxRssKb)} |`,
  ];
  writeSection(lines.join('\n'), false, BIG_SECTION);
}

function render(rows: Map<string, Row>, run: { quick: boolean; reps: number; bigSize: number; failures: string[]; serverPeakKb: number | null; endpoint: string }): string {
  const lines = [
    SECTION,
    '',
    `\`npm run bench:s3${run.quick ? ' -- --quick' : ''}\`, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${run.reps} alternating repetitions, against ${run.endpoint === 'http://127.0.0.1:17480' ? 'the local Ceph RGW of scripts/s3-local (one OSD on a file, same 2 cores)' : run.endpoint}. Big file: ${run.bigSize / 1024 / 1024} MiB of random bytes. The SDK rows are what \`aws s3 cp\` does with its defaults (peers/s3-sdk.ts: multipart from 8 MiB in 8 MiB parts, 8 MiB ranged GETs, 10 requests at once). ferry's rows go client → \`ferry serve --store s3://…\` → RGW, so they carry one more hop than the SDK's. Medians; CPU is user + sys; server CPU is ferry serve's over the same run.`,
    '',
    '| transfer | tool | median s | min–max s | ferry × | client CPU s | ferry serve CPU s | client peak RSS MB |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  const byWhat = new Map<string, Row[]>();
  for (const row of rows.values()) byWhat.set(row.what, [...(byWhat.get(row.what) ?? []), row]);
  for (const [what, group] of byWhat) {
    const ref = group.find((r) => r.tool.startsWith('ferry'));
    for (const row of group) {
      const m = median(row.wall);
      const ratio = ref ? m / median(ref.wall) : NaN;
      lines.push(`| ${what} | ${row === ref ? `**${row.tool}**` : row.tool} | ${m.toFixed(3)} | ${Math.min(...row.wall).toFixed(2)}–${Math.max(...row.wall).toFixed(2)} | ${Number.isFinite(ratio) ? ratio.toFixed(2) : '–'} | ${median(row.cpu).toFixed(2)} | ${row.serverCpu.length ? median(row.serverCpu).toFixed(2) : '–'} | ${row.rssKb.length ? Math.round(Math.max(...row.rssKb) / 1024) : '–'} |`);
    }
  }
  lines.push('', `\`ferry ×\` = this row's median ÷ ferry's: above 1.00 ferry is faster. ferry serve's peak RSS over the whole run: ${run.serverPeakKb === null ? 'unknown' : `${Math.round(run.serverPeakKb / 1024)} MB`}.`);
  if (run.failures.length) lines.push('', 'Failed runs (left out of the medians):', ...run.failures.map((f) => `- ${f}`));
  return lines.join('\n');
}

/** Replaces this benchmark's section of bench/RESULTS.md (or appends it); a quick run's goes to bench/.work/. */
function writeSection(section: string, quick: boolean, heading = SECTION): void {
  const file = quick ? path.join(REPO, 'bench', '.work', 'RESULTS-s3-quick.md') : path.join(REPO, 'bench', 'RESULTS.md');
  mkdirSync(path.dirname(file), { recursive: true });
  const old = existsSync(file) ? readFileSync(file, 'utf8') : '# ferry benchmark results\n';
  const parts = old.split(/\n(?=## )/);
  const kept = parts.filter((part) => part.split('\n')[0] !== heading);
  writeFileSync(file, `${[...kept.map((p) => p.trimEnd()), section].join('\n\n')}\n`);
  log(`wrote the "${heading.slice(3)}" section of ${path.relative(REPO, file)}`);
}

main().catch(async (error: unknown) => {
  console.error(`bench:s3: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  await cleanupAll();
  process.exit(1);
});
