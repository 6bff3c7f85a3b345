// Writes RESULTS.md from the rows of a run.
import type { Row } from './bench.js';
import { MiB } from './context.js';
import type { WorkloadResult } from '../workloads/common.js';
import type { ColdResult } from '../workloads/coldstart.js';

export interface Machine {
  nproc: number;
  cpu: string;
  memGiB: number;
  kernel: string;
  node: string;
  fs: string;
}

export interface ReportInput {
  mode: 'full' | 'quick';
  args: string[];
  started: Date;
  finished: Date;
  machine: Machine;
  versions: Array<[string, string]>;
  ferryVersion: string;
  notes: string[];
  workloads: WorkloadResult[];
  cold?: ColdResult;
  reps: Record<string, number>;
  tmpNote: string;
}

const f2 = (x: number): string => x.toFixed(2);
const f3 = (x: number): string => x.toFixed(3);
const mb = (kb: number | null | undefined): string => (kb ? `${(kb / 1024).toFixed(0)} MB` : '—');
const rate = (x: number): string => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1));
const esc = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const code = (s: string): string => (s ? `\`${esc(s).replace(/`/g, "'")}\`` : '—');

function refFor(rows: Row[], r: Row): Row | undefined {
  return rows.find((x) => x.reference && x.direction === r.direction && x.medianS !== undefined);
}

function statusCell(r: Row): string {
  if (r.status === 'unsupported') return `not yet supported — ${esc((r.reason ?? '').replace(/^not yet supported: /, ''))}`;
  if (r.status === 'failed') return `FAILED — ${esc(r.reason ?? '')}`;
  const ok = r.samples.filter((s) => s.ok).length;
  return r.status === 'partial' ? `${ok}/${r.samples.length} ok — ${esc(r.reason ?? '')}` : `${ok}/${r.samples.length} ok`;
}

function table(rows: Row[], unit: 'MiB/s' | 'files/s' | 'total'): string[] {
  const head =
    unit === 'files/s'
      ? '| tool | median s | min–max s | files/s | MiB/s | ferry × | client peak RSS | runs | command |'
      : unit === 'total'
        ? '| tool | median s (all done) | min–max s | MiB/s in all | ferry × | peak RSS of one client | runs | command |'
        : '| tool | median s | min–max s | MiB/s | ferry × | client peak RSS | runs | command |';
  const cols = head.split('|').length - 2;
  const out = [head, `|${' --- |'.repeat(cols)}`];
  for (const r of rows) {
    const name = r.isFerry ? `**${r.tool}**` : r.tool;
    if (r.medianS === undefined) {
      out.push(`| ${name} |${' — |'.repeat(cols - 3)} ${statusCell(r)} | ${code(r.command)} |`);
      continue;
    }
    const ref = refFor(rows, r);
    const ratio = ref && ref.medianS ? f2(r.medianS / ref.medianS) : '—';
    const mibs = rate(r.bytes / MiB / r.medianS);
    const cells = [name, f3(r.medianS), `${f3(r.minS ?? NaN)}–${f3(r.maxS ?? NaN)}`];
    if (unit === 'files/s') cells.push(rate(r.files / r.medianS), mibs);
    else cells.push(mibs);
    cells.push(ratio, mb(r.peakRssKb), statusCell(r), code(r.command));
    out.push(`| ${cells.join(' | ')} |`);
  }
  return out;
}

function fastestPeer(rows: Row[], dir: string): Row | undefined {
  return rows.filter((r) => !r.isFerry && r.direction === dir && r.medianS !== undefined).sort((a, b) => (a.medianS ?? 0) - (b.medianS ?? 0))[0];
}

export function renderReport(inp: ReportInput): string {
  const L: string[] = [];
  const m = inp.machine;
  L.push('# ferry benchmark results', '');
  L.push(
    `Written by \`npm run bench${inp.args.length ? ` -- ${inp.args.join(' ')}` : ''}\` (bench/run.ts) — ${inp.mode === 'quick' ? '**quick run** (small sizes, 1 repetition: checks the harness, not the figures)' : 'full run'}.`,
    '',
  );
  L.push(`- Date: ${inp.started.toISOString().replace('T', ' ').slice(0, 16)} UTC (took ${((inp.finished.getTime() - inp.started.getTime()) / 60000).toFixed(1)} min)`);
  L.push(`- Machine: ${m.nproc} CPUs (nproc), CPU model "${m.cpu}", ${m.memGiB.toFixed(0)} GiB RAM, Linux ${m.kernel}, ${m.fs}`);
  L.push(`- Node ${m.node}; ferry ${inp.ferryVersion}`);
  L.push(`- Peers: ${inp.versions.map(([k, v]) => `${k} ${v}`).join('; ')}`);
  L.push(`- Repetitions: ${Object.entries(inp.reps).map(([k, v]) => `${k} ${v}`).join(', ')}; tools alternate (forward order on odd repetitions, reverse on even ones); \`sync\` runs untimed before each timed run; page cache warm (sources read once before timing).`);
  L.push(`- Every transfer is verified after it is timed (size + sha256 of every result file; trees compared file by file); a run whose result is wrong counts as failed.`);
  L.push(`- Times are wall clock from spawning the client until it (and, for nc, the listener) exited. Client peak RSS: \`/usr/bin/time -v\` "Maximum resident set size" (largest process of the command). ferry server peak RSS: VmHWM from /proc/PID/status just before SIGTERM.`);
  L.push(`- **ferry ×** = this row's median time ÷ the ferry reference row's (in bold) median time, same direction: how many times faster ferry is than this tool (> 1.00: ferry wins).`);
  L.push(`- In commands, \`ferry\` is \`node dist/src/cli/main.js\`, ${inp.tmpNote}, \`$PASS\` the throwaway FTP password, PORT a free port picked per run.`);
  L.push('');
  if (inp.notes.length) {
    L.push('## Notes from this run', '');
    for (const n of inp.notes) L.push(`- ${n}`);
    L.push('');
  }

  const big = inp.workloads.find((w) => w.id === 'big');
  const durable = inp.workloads.find((w) => w.id === 'durable');
  const trees = inp.workloads.filter((w) => w.id.startsWith('tree-'));
  const conc = inp.workloads.find((w) => w.id === 'concurrent');

  // ---- targets
  const T: string[] = [];
  if (big) {
    const fu = big.rows.find((r) => r.reference && r.direction === 'upload');
    const pu = fastestPeer(big.rows, 'upload');
    if (fu?.medianS && pu?.medianS) T.push(`| ${big.title} upload, ferry --no-fsync ≥ 1.0× fastest peer (${pu.tool}) | ${f2(pu.medianS / fu.medianS)}× | ${pu.medianS / fu.medianS >= 1 ? 'met' : 'missed'} |`);
    const fd = big.rows.find((r) => r.reference && r.direction === 'download');
    const pd = fastestPeer(big.rows, 'download');
    if (fd?.medianS && pd?.medianS) T.push(`| ${big.title} download ≥ 1.0× fastest peer (${pd.tool}) | ${f2(pd.medianS / fd.medianS)}× | ${pd.medianS / fd.medianS >= 1 ? 'met' : 'missed'} |`);
  }
  if (durable) {
    const f = durable.rows.find((r) => r.isFerry);
    const d = durable.rows.find((r) => !r.isFerry);
    if (f?.medianS && d?.medianS) T.push(`| durable put within 1.15× of \`dd conv=fsync\` (ferry time ÷ dd time) | ${f2(f.medianS / d.medianS)} | ${f.medianS / d.medianS <= 1.15 ? 'met' : 'missed'} |`);
  }
  for (const t of trees) {
    for (const dir of ['upload', 'download'] as const) {
      const f = t.rows.find((r) => r.reference && r.direction === dir);
      const rs = t.rows.find((r) => r.direction === dir && r.tool.startsWith('rsync'));
      if (f?.medianS && rs?.medianS) T.push(`| ${t.title} ${dir}, durable, ≥ 2× rsync daemon files/s | ${f2(rs.medianS / f.medianS)}× | ${rs.medianS / f.medianS >= 2 ? 'met' : 'missed'} |`);
      else if (f && f.status === 'unsupported') T.push(`| ${t.title} ${dir} ≥ 2× rsync daemon files/s | — | not yet supported |`);
    }
  }
  if (conc) {
    const f = conc.rows.find((r) => r.reference && r.direction === 'download');
    const c = conc.rows.find((r) => r.direction === 'download' && r.tool.includes('curl'));
    if (f?.medianS && c?.medianS) T.push(`| ${conc.title}: ${conc.rows[0]?.files ?? ''} \`ferry get\` total ≤ curl + vsftpd total | ${f2(c.medianS / f.medianS)}× (${f3(f.medianS)} s vs ${f3(c.medianS)} s) | ${f.medianS <= c.medianS ? 'met' : 'missed'} |`);
  }
  const ferryRows = inp.workloads.flatMap((w) => w.rows.filter((r) => r.isFerry && r.peakRssKb));
  const clientPeak = Math.max(0, ...ferryRows.map((r) => r.peakRssKb ?? 0));
  const serverPeak = Math.max(0, ...inp.workloads.flatMap((w) => w.servers.map((s) => s.peakRssKb ?? 0)));
  if (clientPeak) T.push(`| ferry client peak RSS < 100 MB (max over all workloads) | ${mb(clientPeak)} | ${clientPeak < 100 * 1024 ? 'met' : 'missed'} |`);
  if (serverPeak) T.push(`| ferry server peak RSS < 100 MB (max over all workloads) | ${mb(serverPeak)} | ${serverPeak < 100 * 1024 ? 'met' : 'missed'} |`);
  if (T.length) {
    L.push('## Targets of issue 6 (this run)', '', '| target | measured | |', '| --- | --- | --- |', ...T, '');
  }

  // ---- issue 2
  if (big) {
    L.push(`## ferry vs nc, ${big.title.replace(/^one /, '').replace(/ random file.*/, '')} (issue 2)`, '');
    L.push('Same run, same file, page cache warm. Wall time median (min–max); peak RSS by `/usr/bin/time -v` (nc: client / listener; ferry: client, and the server\'s VmHWM over the whole workload).', '');
    L.push('| transfer | wall s median (min–max) | MiB/s | peak RSS client | peak RSS other side | command |', '| --- | --- | --- | --- | --- | --- |');
    const srvNf = big.servers.find((s) => s.label.includes('--no-fsync'));
    const srvFs = big.servers.find((s) => s.label.includes('(fsync'));
    const pick = (tool: string, dir: string): Row | undefined => big.rows.find((r) => r.tool === tool && r.direction === dir);
    const line = (label: string, r: Row | undefined, other: string): void => {
      if (!r) return;
      if (r.medianS === undefined) {
        L.push(`| ${label} | ${statusCell(r)} | — | — | — | ${code(r.command)} |`);
        return;
      }
      L.push(`| ${label} | ${f3(r.medianS)} (${f3(r.minS ?? NaN)}–${f3(r.maxS ?? NaN)}) | ${rate(r.bytes / MiB / r.medianS)} | ${mb(r.peakRssKb)} | ${other} | ${code(r.command)} |`);
    };
    line('`ferry put` (server --no-fsync)', pick('ferry (--no-fsync)', 'upload'), `server ${mb(srvNf?.peakRssKb)}`);
    line('`ferry put` (server default: fsync)', pick('ferry (fsync, default)', 'upload'), `server ${mb(srvFs?.peakRssKb)}`);
    const ncu = pick('nc', 'upload');
    line('nc upload', ncu, `listener ${mb(ncu?.peakRss2Kb)}`);
    line('`ferry get`', pick('ferry', 'download'), `server ${mb(srvNf?.peakRssKb)}`);
    const ncd = pick('nc', 'download');
    line('nc download', ncd, `listener ${mb(ncd?.peakRss2Kb)}`);
    L.push('');
  }

  const sections: Array<[WorkloadResult | undefined, 'MiB/s' | 'files/s' | 'total', string]> = [
    [big, 'MiB/s', '1. '],
    ...trees.map((t, i) => [t, 'files/s', `2${String.fromCharCode(97 + i)}. `] as [WorkloadResult, 'files/s', string]),
    [conc, 'total', '3. '],
    [durable, 'MiB/s', '4. '],
  ];
  for (const [w, unit, num] of sections) {
    if (!w) continue;
    L.push(`## ${num}${w.title}`, '');
    for (const n of w.notes) L.push(`- ${n}`);
    if (w.notes.length) L.push('');
    const dirs = [...new Set(w.rows.map((r) => r.direction))];
    for (const d of dirs) {
      L.push(`### ${d}`, '', ...table(w.rows.filter((r) => r.direction === d), unit), '');
    }
    if (w.servers.length) {
      L.push('ferry server peak RSS (VmHWM over this workload):', '');
      for (const s of w.servers) L.push(`- ${s.label}: ${mb(s.peakRssKb)}${s.exitCode !== undefined && s.exitCode !== 0 ? ` (exit code on SIGTERM: ${s.exitCode})` : ''} — \`${s.command}\``);
      L.push('');
    }
  }

  if (inp.cold) {
    L.push('## CLI start-up (cold start of a process, files in page cache)', '', `Measured with ${inp.cold.tool}.`, '');
    for (const n of inp.cold.notes) L.push(`- ${n}`);
    if (inp.cold.notes.length) L.push('');
    L.push('| command | median ms | mean ms | min–max ms | runs | peak RSS | |', '| --- | --- | --- | --- | --- | --- | --- |');
    for (const r of inp.cold.rows) {
      if (r.medianMs === undefined) L.push(`| ${code(r.command)} | — | — | — | — | ${mb(r.rssKb)} | ${esc(r.error ?? 'not measured')} |`);
      else L.push(`| ${code(r.command)} | ${r.medianMs.toFixed(1)} | ${(r.meanMs ?? NaN).toFixed(1)} | ${(r.minMs ?? NaN).toFixed(1)}–${(r.maxMs ?? NaN).toFixed(1)} | ${r.runs ?? ''} | ${mb(r.rssKb)} | |`);
    }
    L.push('');
  }

  L.push('## How the peers were set up', '');
  L.push('All on 127.0.0.1, high ports, throwaway configs and keys under the run\'s temp dir, every process stopped by PID at the end (see ../shared/PEERS.md):');
  L.push('- sshd: private config, own ed25519 host key, key-only root login with a throwaway ed25519 key, `UsePAM no`, `StrictModes no`, `Subsystem sftp internal-sftp`; `sshd -D -e -f CONFIG`. scp/sftp options: `-F /dev/null -P PORT -i KEY -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes`.');
  L.push('- rsync daemon: `rsync --daemon --no-detach --address 127.0.0.1 --port PORT --config F`, `use chroot = no`, module `up` writable, module `data` read-only.');
  L.push('- vsftpd: standalone `listen=YES`, `background=NO`, a throwaway local user (`ferrybench`, random password, removed at the end), writes enabled, passive ports in a high range with `pasv_address=127.0.0.1`, `seccomp_sandbox=NO`. lftp with `set ftp:ssl-allow no`.');
  L.push('- nc: netcat-openbsd; the listener is started first (its readiness read from /proc/net/tcp), the time runs from the client\'s start until both exited.');
  L.push('- ferry: `ferry serve --host 127.0.0.1 --port 0 --root DIR` (and `--no-fsync`), one fresh server (and root) per workload; its log goes to a file.');
  L.push('');
  return L.join('\n');
}
