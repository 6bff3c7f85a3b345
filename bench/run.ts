// `npm run bench`: ferry against nc, scp, sftp, rsync and FTP on 127.0.0.1 (issues 6, 11, 12).
//   node dist/bench/run.js              full run (1 GiB, 10,000 × 1 KiB and 1,000 × 4 KiB trees,
//                                       100 concurrent clients, durable put vs dd conv=fsync,
//                                       CLI start-up); writes bench/RESULTS.md (+ RESULTS.json)
//   node dist/bench/run.js --quick      the same, small (under a minute); writes bench/.work/
//   --only big|tree|tree100k|concurrent|durable|coldstart[,…]   run some workloads: their
//               sections in RESULTS.md are replaced, the others kept (merged via RESULTS.json)
//   --with tree100k   add the opt-in 100,000-file tree (ferry and rsync only; ≈ 6–10 min)
//   --reps N    repetitions for every workload      --out FILE   where to write the results
//   --fresh     do not merge with the results already in the output file
//   --ferry-client-args "…"   extra flags for every timed/seeding ferry put and get
//   --ferry-server-args "…"   extra flags for every ferry serve
//   --keep      keep the temp dir (data, configs, logs) for inspection
import { mkdtempSync, chmodSync, mkdirSync, writeFileSync, readFileSync, existsSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GiB, MiB, REPO, FERRY_CLI, type Ctx, type Sizes } from './lib/context.js';
import { makeRandomFile, makeTree, manifest, sha256File } from './lib/data.js';
import { cleanupAll, cleanupSync, firstLines, isAborting, registerTempPath, runShell, setScratchDir } from './lib/proc.js';
import { renderReport, type Machine } from './lib/report.js';
import { keptSections, loadDataset, mergeDataset, saveDataset, type RunInfo } from './lib/dataset.js';
import { ensureTools, has } from './peers/install.js';
import { startSshd } from './peers/sshd.js';
import { startRsyncd } from './peers/rsyncd.js';
import { startVsftpd } from './peers/vsftpd.js';
import { bigWorkload } from './workloads/big.js';
import { treeWorkload, type TreeData } from './workloads/tree.js';
import { concurrentWorkload } from './workloads/concurrent.js';
import { coldStart, type ColdResult } from './workloads/coldstart.js';
import type { Peers, WorkloadResult } from './workloads/common.js';

const WORKLOADS = ['big', 'tree', 'tree100k', 'concurrent', 'durable', 'coldstart'] as const;
type Workload = (typeof WORKLOADS)[number];
/** Left out of a run without --only unless named by --with (they take long). */
const OPT_IN: Workload[] = ['tree100k'];
const ALIASES: Record<string, Workload> = { '1': 'big', file: 'big', '2': 'tree', trees: 'tree', small: 'tree', '100k': 'tree100k', '3': 'concurrent', '4': 'durable', cold: 'coldstart', startup: 'coldstart' };

function usage(msg?: string): never {
  if (msg) console.error(`bench: ${msg}`);
  console.error(
    'usage: node dist/bench/run.js [--quick] [--only big|tree|tree100k|concurrent|durable|coldstart[,…]] [--with tree100k] [--reps N] [--out FILE] [--fresh] [--ferry-client-args "…"] [--ferry-server-args "…"] [--keep]',
  );
  process.exit(2);
}

interface Options {
  quick: boolean;
  only: Set<Workload>;
  with: Set<Workload>;
  reps?: number;
  out?: string;
  keep: boolean;
  fresh: boolean;
  ferryClientArgs: string[];
  ferryServerArgs: string[];
}

function parseArgs(argv: string[]): Options {
  let quick = false;
  let keep = false;
  let fresh = false;
  let reps: number | undefined;
  let out: string | undefined;
  const only = new Set<Workload>();
  const withSet = new Set<Workload>();
  let ferryClientArgs: string[] = [];
  let ferryServerArgs: string[] = [];
  const workloads = (v: string, into: Set<Workload>): void => {
    for (const w of v.split(',')) {
      const k = (ALIASES[w] ?? w) as Workload;
      if (!WORKLOADS.includes(k)) usage(`unknown workload "${w}" (one of ${WORKLOADS.join(', ')})`);
      into.add(k);
    }
  };
  // words split on blanks: flags for ferry, never run through a shell unquoted
  const words = (v: string): string[] => v.split(/\s+/).filter((w) => w !== '');
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const val = (): string => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined) usage(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') quick = true;
    else if (a === '--keep') keep = true;
    else if (a === '--fresh') fresh = true;
    else if (a === '--help' || a === '-h') usage();
    else if (a.startsWith('--only')) workloads(val(), only);
    else if (a.startsWith('--with')) workloads(val(), withSet);
    else if (a.startsWith('--ferry-client-args')) ferryClientArgs = words(val());
    else if (a.startsWith('--ferry-server-args')) ferryServerArgs = words(val());
    else if (a.startsWith('--reps')) {
      reps = Number(val());
      if (!Number.isInteger(reps) || reps < 1 || reps > 50) usage('--reps must be an integer 1–50');
    } else if (a.startsWith('--out')) out = path.resolve(val());
    else usage(`unknown argument ${a}`);
  }
  return { quick, only, with: withSet, keep, fresh, ferryClientArgs, ferryServerArgs, ...(reps ? { reps } : {}), ...(out ? { out } : {}) };
}

function sizesFor(quick: boolean, reps?: number): Sizes {
  const r = (n: number): number => reps ?? n;
  return quick
    ? {
        bigBytes: 64 * MiB,
        trees: [{ name: 't200x1k', count: 200, size: 1024 }],
        manyFilesTree: { name: 't2000x1k', count: 2000, size: 1024 },
        concurrentClients: 20,
        concurrentBytes: MiB,
        reps: { big: r(1), tree: r(1), manyFiles: r(1), concurrent: r(1), durable: r(1) },
        coldRuns: 10,
      }
    : {
        bigBytes: GiB,
        trees: [
          { name: 't10000x1k', count: 10_000, size: 1024 },
          { name: 't1000x4k', count: 1000, size: 4096 },
        ],
        manyFilesTree: { name: 't100000x1k', count: 100_000, size: 1024 },
        concurrentClients: 100,
        concurrentBytes: MiB,
        reps: { big: r(5), tree: r(3), manyFiles: r(1), concurrent: r(5), durable: r(5) },
        coldRuns: 30,
      };
}

async function machine(T: string): Promise<Machine> {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const cpu = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown';
  const nproc = Number((await runShell('nproc', { timeoutMs: 5000, timeV: false })).stdout.trim()) || os.cpus().length;
  const df = await runShell(`df -T ${T} | tail -1`, { timeoutMs: 5000, timeV: false });
  const cols = df.stdout.trim().split(/\s+/);
  return { nproc, cpu, memGiB: os.totalmem() / GiB, kernel: os.release(), node: process.version, fs: `temp dir on ${cols[1] ?? '?'} (${cols[0] ?? '?'})` };
}

async function versions(): Promise<Array<[string, string]>> {
  const probes: Array<[string, string, RegExp]> = [
    ['OpenSSH', 'ssh -V 2>&1', /OpenSSH_([^\s,]+)/],
    ['rsync', 'rsync --version', /version\s+(\S+)/],
    ['vsftpd', 'vsftpd -v 0>&1', /version\s+(\S+)/],
    ['curl', 'curl --version', /curl\s+(\S+)/],
    ['lftp', 'lftp --version', /Version\s+(\S+)/],
    ['netcat-openbsd', 'dpkg-query -W -f=\'${Version}\' netcat-openbsd', /(\S+)/],
    ['hyperfine', 'hyperfine --version', /hyperfine\s+(\S+)/],
  ];
  const out: Array<[string, string]> = [];
  for (const [name, cmd, re] of probes) {
    const r = await runShell(cmd, { timeoutMs: 10_000, timeV: false });
    const v = re.exec(`${r.stdout}\n${r.stderr}`)?.[1];
    out.push([name, v ?? 'not installed']);
  }
  return out;
}

function log(msg: string): void {
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = parseArgs(args);
  const started = new Date();
  const sizes = sizesFor(opt.quick, opt.reps);
  const want = (w: Workload): boolean => (opt.only.size === 0 ? !OPT_IN.includes(w) || opt.with.has(w) : opt.only.has(w) || opt.with.has(w));
  const notes: string[] = [];
  // Every Node process parses this bundle at start (+130 ms CPU on the bench machine): a cost
  // of the environment, not of ferry, that the peers (C programs) would not pay.
  if (process.env.NODE_EXTRA_CA_CERTS !== undefined) {
    notes.push(`NODE_EXTRA_CA_CERTS (${process.env.NODE_EXTRA_CA_CERTS}) was set in the bench's environment and is removed for everything it runs: with it every Node process (\`node -e 0\` too) parses that CA bundle at start, +130 ms of CPU here.`);
    delete process.env.NODE_EXTRA_CA_CERTS;
  }

  process.on('exit', () => cleanupSync());
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      log(`${sig}: stopping everything this run started`);
      void cleanupAll().finally(() => process.exit(130));
    });
  }

  // the ferry CLI under test
  let ferryVersion = 'unknown';
  if (!existsSync(FERRY_CLI)) {
    notes.push(`ferry CLI not built (${path.relative(REPO, FERRY_CLI)} missing): every ferry row fails.`);
  } else {
    const v = await runShell(`${JSON.stringify(process.execPath)} ${JSON.stringify(FERRY_CLI)} --version`, { timeoutMs: 20_000, timeV: false });
    if (v.code === 0) ferryVersion = v.stdout.trim().split('\n')[0] ?? 'unknown';
    else notes.push(`\`ferry --version\` failed (exit ${v.code}): ${firstLines(v.stderr, 2)}`);
  }

  notes.push(...(await ensureTools(log)));
  if (!has('/usr/bin/time')) {
    console.error('bench: /usr/bin/time is required (Debian package "time")');
    process.exit(1);
  }

  const T = mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-'));
  chmodSync(T, 0o755); // the FTP user must reach its files
  if (!opt.keep) registerTempPath(T);
  mkdirSync(path.join(T, 'scratch'));
  setScratchDir(path.join(T, 'scratch'));
  const ctx: Ctx = {
    T,
    mode: opt.quick ? 'quick' : 'full',
    sizes,
    repo: REPO,
    ferryCli: FERRY_CLI,
    ferryClientArgs: opt.ferryClientArgs,
    ferryServerArgs: opt.ferryServerArgs,
    notes,
    redactions: [[T, '$T']],
    log,
  };
  log(`temp dir ${T}${opt.keep ? ' (kept)' : ''}; mode ${ctx.mode}; workloads ${WORKLOADS.filter(want).join(', ')}`);

  // ---- data, created once per run, page cache warmed by hashing it
  const dataDir = path.join(T, 'data');
  mkdirSync(dataDir);
  const bigFile = path.join(dataDir, 'big.bin');
  let big: { file: string; size: number; sha256: string } | undefined;
  if (want('big') || want('durable')) {
    log(`creating ${sizes.bigBytes / MiB} MiB of random data`);
    await makeRandomFile(bigFile, sizes.bigBytes);
    big = { file: bigFile, ...(await sha256File(bigFile)) };
  }
  const small = path.join(dataDir, 'c1m.bin');
  await makeRandomFile(small, sizes.concurrentBytes);
  const smallData = { file: small, ...(await sha256File(small)) };
  const trees: TreeData[] = [];
  const makeTreeData = async (t: { name: string; count: number; size: number }): Promise<TreeData> => {
    log(`creating tree ${t.name}: ${t.count} × ${t.size} B`);
    const dir = path.join(dataDir, t.name);
    await makeTree(dir, t.count, t.size);
    return { ...t, dir, manifest: await manifest(dir) };
  };
  if (want('tree')) for (const t of sizes.trees) trees.push(await makeTreeData(t));
  const manyFiles = want('tree100k') ? await makeTreeData(sizes.manyFilesTree) : undefined;

  // ---- peers (a peer that does not start is recorded; its rows fail, the run goes on)
  const needPeers = want('big') || want('tree') || want('tree100k') || want('concurrent');
  const peers: Peers = { ssh: 'not started', rsync: 'not started', ftp: 'not started' };
  if (needPeers) {
    mkdirSync(path.join(T, 'up', 'rsync'), { recursive: true });
    try {
      peers.ssh = await startSshd(path.join(T, 'peers', 'ssh'));
    } catch (err) {
      peers.ssh = (err as Error).message;
    }
    try {
      peers.rsync = await startRsyncd(path.join(T, 'peers', 'rsync'), path.join(T, 'up', 'rsync'), dataDir);
    } catch (err) {
      peers.rsync = (err as Error).message;
    }
    try {
      const ftp = await startVsftpd(path.join(T, 'peers', 'ftp'), T);
      ctx.redactions.push([ftp.pass, '$PASS']);
      peers.ftp = ftp;
    } catch (err) {
      peers.ftp = (err as Error).message;
    }
    for (const [k, v] of Object.entries(peers)) {
      if (typeof v === 'string') notes.push(`peer ${k} did not start: ${v}`);
      else log(`peer ${k} on 127.0.0.1:${(v as { port: number }).port}`);
    }
  }

  const results: WorkloadResult[] = [];
  let cold: ColdResult | undefined;
  const guard = async (name: string, fn: () => Promise<void>): Promise<void> => {
    if (isAborting()) return;
    log(`== ${name}`);
    try {
      await fn();
    } catch (err) {
      notes.push(`workload ${name} aborted by a harness error: ${(err as Error).stack ?? String(err)}`);
      log(`workload ${name} aborted: ${(err as Error).message}`);
    }
  };
  if (want('big') && big) {
    const b = big;
    await guard('big file', async () => {
      results.push(await bigWorkload(ctx, peers, b, { id: 'big', title: `one ${sizes.bigBytes >= GiB ? `${sizes.bigBytes / GiB} GiB` : `${sizes.bigBytes / MiB} MiB`} random file`, reps: sizes.reps.big }));
    });
  }
  for (const t of trees) await guard(`tree ${t.name}`, async () => void results.push(await treeWorkload(ctx, peers, t, sizes.reps.tree)));
  if (manyFiles) {
    const t = manyFiles;
    await guard(`tree ${t.name}`, async () => void results.push(await treeWorkload(ctx, peers, t, sizes.reps.manyFiles, { only: 'rsync' })));
  }
  if (want('concurrent')) await guard('concurrent', async () => void results.push(await concurrentWorkload(ctx, peers, smallData, sizes.reps.concurrent)));
  if (want('durable') && big) {
    const b = big;
    await guard('durable', async () => {
      results.push(await bigWorkload(ctx, peers, b, { id: 'durable', title: `durable ${sizes.bigBytes >= GiB ? `${sizes.bigBytes / GiB} GiB` : `${sizes.bigBytes / MiB} MiB`} put vs dd conv=fsync`, reps: sizes.reps.durable, durable: true }));
    });
  }
  if (want('coldstart')) await guard('cold start', async () => void (cold = await coldStart(ctx, small)));

  // ---- stop peers
  for (const p of Object.values(peers)) if (typeof p !== 'string') await (p as { daemon: { stop(): Promise<void> } }).daemon.stop();

  const finished = new Date();
  const workDir = path.join(REPO, 'bench', '.work');
  mkdirSync(workDir, { recursive: true });
  const tag = opt.quick ? 'quick' : opt.only.size ? `only-${[...opt.only].join('-')}` : 'full';
  // A quick run's sizes are not the real ones: it never merges into bench/RESULTS.md.
  const outFile = opt.out ?? (opt.quick ? path.join(workDir, 'RESULTS-quick.md') : path.join(REPO, 'bench', 'RESULTS.md'));
  const jsonFile = outFile.replace(/\.md$/, '') + '.json';
  mkdirSync(path.dirname(outFile), { recursive: true });
  const run: RunInfo = {
    started: started.toISOString(),
    finished: finished.toISOString(),
    args,
    mode: ctx.mode,
    machine: await machine(T),
    versions: await versions(),
    ferryVersion,
    ferryClientArgs: opt.ferryClientArgs,
    ferryServerArgs: opt.ferryServerArgs,
    notes,
    reps: {
      ...(want('big') ? { big: sizes.reps.big } : {}),
      ...(want('tree') ? { tree: sizes.reps.tree } : {}),
      ...(want('tree100k') ? { 'many-files tree': sizes.reps.manyFiles } : {}),
      ...(want('concurrent') ? { concurrent: sizes.reps.concurrent } : {}),
      ...(want('durable') ? { durable: sizes.reps.durable } : {}),
      ...(want('coldstart') ? { 'cold start': sizes.coldRuns } : {}),
    },
    measured: [...results.map((w) => w.title), ...(cold ? ['CLI start-up'] : [])],
  };
  const previous = opt.fresh ? undefined : loadDataset(jsonFile);
  const dataset = mergeDataset(previous, run, results, cold);
  const report = renderReport(dataset);
  // Sections written by other benchmarks (`npm run bench:memory`) are kept as they are.
  const oldMd = existsSync(outFile) ? readFileSync(outFile, 'utf8') : '';
  const kept = keptSections(oldMd, dataset, opt.fresh);
  writeFileSync(outFile, [report.trimEnd(), ...kept].join('\n\n') + '\n');
  saveDataset(jsonFile, dataset);
  writeFileSync(path.join(workDir, `results-${tag}.json`), JSON.stringify({ started, finished, notes, results, cold }, null, 1));
  log(`wrote ${path.relative(process.cwd(), outFile) || outFile} (${statSync(outFile).size} bytes) and ${path.basename(jsonFile)}`);
  await cleanupAll();
}

main().catch(async (err) => {
  console.error(`bench: ${(err as Error).stack ?? String(err)}`);
  await cleanupAll();
  process.exit(1);
});
