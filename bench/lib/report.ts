// Writes RESULTS.md from a dataset: the workloads of one run, or of several runs merged (a
// partial run replaces only the workloads it measured; lib/dataset.ts).
import type { CpuSample, Row } from './bench.js';
import { GiB, MiB } from './context.js';
import type { Dataset, RunInfo } from './dataset.js';
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

const f2 = (x: number): string => x.toFixed(2);
const f3 = (x: number): string => x.toFixed(3);
const mb = (kb: number | null | undefined): string => (kb ? `${(kb / 1024).toFixed(0)} MB` : '—');
const rate = (x: number): string => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1));
const esc = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const code = (s: string): string => (s ? `\`${esc(s).replace(/`/g, "'")}\`` : '—');
const when = (iso: string): string => `${iso.replace('T', ' ').slice(0, 16)} UTC`;
const met = (ok: boolean): string => (ok ? 'met' : '**missed**');

function refFor(rows: Row[], r: Row): Row | undefined {
  return rows.find((x) => x.reference && x.direction === r.direction && x.medianS !== undefined);
}

function statusCell(r: Row): string {
  if (r.status === 'unsupported') return `not yet supported — ${esc((r.reason ?? '').replace(/^not yet supported: /, ''))}`;
  if (r.status === 'failed') return `FAILED — ${esc(r.reason ?? '')}`;
  const ok = r.okRuns ?? r.samples.filter((s) => s.ok).length;
  const all = r.runs ?? r.samples.length;
  return r.status === 'partial' ? `${ok}/${all} ok — ${esc(r.reason ?? '')}` : `${ok}/${all} ok`;
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

/** What the "server side" CPU of a row is (see the header for how each is measured). */
function serverSide(r: Row): string {
  if (r.isFerry) return 'ferry serve';
  if (/^(scp|sftp)/.test(r.tool)) return 'sshd + session';
  if (r.tool.startsWith('rsync')) return 'rsync daemon + child';
  if (r.tool.startsWith('FTP') || r.tool.startsWith('lftp')) return 'vsftpd + session';
  if (r.tool === 'nc') return 'nc listener';
  return '—';
}

const sumCpu = (c: CpuSample): number | null =>
  c.clientUserS === null || c.clientSysS === null ? null : c.clientUserS + c.clientSysS + (c.serverUserS ?? 0) + (c.serverSysS ?? 0);

/** CPU-seconds per GiB moved (client + server, user and sys), medians over the runs. */
function cpuTable(rows: Row[]): string[] {
  const out = [
    '| tool | wall s | client user | client sys | server side | server user | server sys | CPU-s per GiB, all | CPU ÷ wall |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of rows) {
    const c = r.cpu;
    if (r.medianS === undefined || !c) continue;
    const g = r.bytes / GiB;
    const per = (x: number | null): string => (x === null ? '—' : f2(x / g));
    const total = sumCpu(c);
    const side = serverSide(r);
    const unsettled = c.serverSettled === false ? ' (session still running 5 s after the client: a floor)' : '';
    out.push(
      `| ${r.isFerry ? `**${r.tool}**` : r.tool} | ${f3(r.medianS)} | ${per(c.clientUserS)} | ${per(c.clientSysS)} | ${side}${unsettled} | ${side === '—' ? '—' : per(c.serverUserS)} | ${side === '—' ? '—' : per(c.serverSysS)} | ${total === null ? '—' : `**${f2(total / g)}**`} | ${total === null ? '—' : f2(total / r.medianS)} |`,
    );
  }
  return out;
}

function cpuPerGiB(r: Row | undefined): string {
  const t = r?.cpu ? sumCpu(r.cpu) : null;
  return t === null || !r ? '' : `${f2(t / (r.bytes / GiB))} CPU-s/GiB`;
}

function fastest(rows: Row[], dir: string, match: (r: Row) => boolean): Row | undefined {
  return rows.filter((r) => r.direction === dir && r.medianS !== undefined && match(r)).sort((a, b) => (a.medianS ?? 0) - (b.medianS ?? 0))[0];
}

interface Target {
  text: string;
  measured: string;
  verdict: string;
  run: string;
}

/** "peer ÷ ferry" speed ratio row: ferry wins at ≥ `goal`. */
function speedTarget(text: string, ferry: Row | undefined, peer: Row | undefined, goal: number, run: string, perGiB: boolean): Target | undefined {
  if (!ferry || !peer) return undefined;
  if (ferry.medianS === undefined || peer.medianS === undefined) {
    const why = ferry.medianS === undefined ? `${ferry.tool}: ${statusCell(ferry)}` : `${peer.tool}: ${statusCell(peer)}`;
    return { text, measured: why, verdict: ferry.status === 'unsupported' ? 'not yet supported' : 'not measured', run };
  }
  const ratio = peer.medianS / ferry.medianS;
  const cpu = perGiB ? [cpuPerGiB(ferry), cpuPerGiB(peer)] : ['', ''];
  const detail = `ferry ${f3(ferry.medianS)} s${cpu[0] ? `, ${cpu[0]}` : ''}; ${peer.tool} ${f3(peer.medianS)} s${cpu[1] ? `, ${cpu[1]}` : ''}`;
  return { text, measured: `**${f2(ratio)}×** (${detail})`, verdict: met(ratio >= goal), run };
}

function issue11Targets(ds: Dataset): Target[] {
  const T: Target[] = [];
  const big = ds.workloads.find((w) => w.id === 'big');
  if (big) {
    const rows = big.rows;
    const rsync = (dir: string): Row | undefined => rows.find((r) => r.direction === dir && r.tool.startsWith('rsync'));
    const pick = (tool: string, dir: string): Row | undefined => rows.find((r) => r.tool === tool && r.direction === dir);
    const size = big.title.replace(/^one /, '').replace(/ random file.*/, '');
    const add = (t: Target | undefined): void => void (t && T.push(t));
    add(speedTarget(`${size} put (server --no-fsync) ≥ 1.0× rsync daemon \`--whole-file\``, pick('ferry (--no-fsync)', 'upload'), rsync('upload'), 1, big.run, true));
    add(speedTarget(`${size} get ≥ 1.0× rsync daemon \`--whole-file\``, pick('ferry', 'download'), rsync('download'), 1, big.run, true));
    const nf = pick('ferry (--no-fsync)', 'upload');
    const fs = pick('ferry (fsync, default)', 'upload');
    if (nf?.medianS && fs?.medianS) {
      const r = fs.medianS / nf.medianS;
      T.push({ text: `${size} durable put (default) within 1.10× of ferry's own \`--no-fsync\` put (durable ÷ no-fsync time)`, measured: `**${f2(r)}** (${f3(fs.medianS)} s vs ${f3(nf.medianS)} s)`, verdict: met(r <= 1.1), run: big.run });
    }
    const aes = (dir: string): Row | undefined => fastest(rows, dir, (r) => /^(scp|sftp) \(aes128-gcm\)/.test(r.tool));
    add(speedTarget(`${size} \`--tls\` put ≥ 1.0× scp/sftp \`-c aes128-gcm@openssh.com\` (the faster)`, pick('ferry --tls (--no-fsync)', 'upload'), aes('upload'), 1, big.run, true));
    add(speedTarget(`${size} \`--tls\` get ≥ 1.0× scp/sftp \`-c aes128-gcm@openssh.com\` (the faster)`, pick('ferry --tls', 'download'), aes('download'), 1, big.run, true));
  }
  const ferryRows = ds.workloads.flatMap((w) => w.rows.filter((r) => r.isFerry && r.peakRssKb).map((r) => ({ r, w })));
  const client = ferryRows.sort((a, b) => (b.r.peakRssKb ?? 0) - (a.r.peakRssKb ?? 0))[0];
  const servers = ds.workloads.flatMap((w) => w.servers.filter((s) => s.peakRssKb).map((s) => ({ s, w })));
  const server = servers.sort((a, b) => (b.s.peakRssKb ?? 0) - (a.s.peakRssKb ?? 0))[0];
  if (client) T.push({ text: 'ferry client peak RSS < 100 MB (max over all workloads)', measured: `${mb(client.r.peakRssKb)} (${client.w.title}, ${client.r.tool} ${client.r.direction})`, verdict: met((client.r.peakRssKb ?? 0) < 100 * 1024), run: client.w.run });
  if (server) T.push({ text: 'ferry server peak RSS < 100 MB (max over all workloads)', measured: `${mb(server.s.peakRssKb)} (${server.w.title}, ${server.s.label})`, verdict: met((server.s.peakRssKb ?? 0) < 100 * 1024), run: server.w.run });
  return T;
}

function issue12Targets(ds: Dataset): Target[] {
  const T: Target[] = [];
  for (const t of ds.workloads.filter((w) => w.id.startsWith('tree-'))) {
    for (const dir of ['upload', 'download'] as const) {
      const f = t.rows.find((r) => r.reference && r.direction === dir);
      const rs = t.rows.find((r) => r.direction === dir && r.tool.startsWith('rsync'));
      const x = speedTarget(`${t.title} \`${dir === 'upload' ? 'put' : 'get'} -r\`, durable, ≥ 2× rsync daemon files/s`, f, rs, 2, t.run, false);
      if (x) T.push(x);
    }
    if (t.rssTarget) {
      const client = Math.max(0, ...t.rows.filter((r) => r.isFerry).map((r) => r.peakRssKb ?? 0));
      const server = Math.max(0, ...t.servers.map((s) => s.peakRssKb ?? 0));
      if (client) T.push({ text: `${t.title}: ferry client peak RSS < 100 MB`, measured: mb(client), verdict: met(client < 100 * 1024), run: t.run });
      if (server) T.push({ text: `${t.title}: ferry server peak RSS < 100 MB`, measured: mb(server), verdict: met(server < 100 * 1024), run: t.run });
    }
  }
  const conc = ds.workloads.find((w) => w.id === 'concurrent');
  if (conc) {
    const f = conc.rows.find((r) => r.reference && r.direction === 'download');
    const c = conc.rows.find((r) => r.direction === 'download' && r.tool.includes('curl'));
    const x = speedTarget(`${conc.title}: ${f?.files ?? ''} \`ferry get\` at once, total ≤ curl + vsftpd total`, f, c, 1, conc.run, false);
    if (x) T.push(x);
  }
  const cold = ds.cold;
  if (cold) {
    const floor = cold.rows.find((r) => r.floor);
    for (const r of cold.rows.filter((x) => !x.floor && !x.yardstick)) {
      const text = `cold start \`${r.name.replace(/ \(.*\)$/, '')}\` ≤ 1.15× \`node -e 0\` (ferry ÷ node median)`;
      if (floor?.medianMs && r.medianMs) {
        const ratio = r.medianMs / floor.medianMs;
        T.push({ text, measured: `**${f2(ratio)}** (${r.medianMs.toFixed(1)} ms vs ${floor.medianMs.toFixed(1)} ms)`, verdict: met(ratio <= 1.15), run: cold.run });
      } else T.push({ text, measured: r.error ?? floor?.error ?? 'not measured', verdict: 'not measured', run: cold.run });
    }
  }
  return T;
}

function targetTable(title: string, targets: Target[], manyRuns: boolean): string[] {
  if (!targets.length) return [];
  const head = manyRuns ? ['| target | measured | | run |', '| --- | --- | --- | --- |'] : ['| target | measured | |', '| --- | --- | --- |'];
  return [`## ${title}`, '', ...head, ...targets.map((t) => `| ${t.text} | ${t.measured} | ${t.verdict} |${manyRuns ? ` ${when(t.run)} |` : ''}`), ''];
}

function runLine(r: RunInfo): string {
  const took = ((new Date(r.finished).getTime() - new Date(r.started).getTime()) / 60000).toFixed(1);
  const extra = [
    ...(r.ferryClientArgs.length ? [`every timed \`ferry put\`/\`get\` with \`${r.ferryClientArgs.join(' ')}\``] : []),
    ...(r.ferryServerArgs.length ? [`every \`ferry serve\` with \`${r.ferryServerArgs.join(' ')}\``] : []),
  ];
  const shown = r.args.map((a) => (/\s/.test(a) ? `"${a}"` : a)).join(' ');
  return `\`npm run bench${shown ? ` -- ${shown}` : ''}\`${extra.length ? ` (${extra.join('; ')})` : ''} — ${r.mode === 'quick' ? '**quick run** (small sizes: checks the harness, not the figures)' : 'full sizes'}, ${when(r.started)}, took ${took} min; measured ${r.measured.join(', ')} (repetitions: ${Object.entries(r.reps).map(([k, v]) => `${k} ${v}`).join(', ')})`;
}

export function renderReport(ds: Dataset): string {
  const L: string[] = [];
  const runs = [...ds.runs].sort((a, b) => b.started.localeCompare(a.started));
  const latest = runs[0];
  if (!latest) return '# ferry benchmark results\n\nNo runs yet.\n';
  const many = runs.length > 1;
  const m = latest.machine;
  L.push('# ferry benchmark results', '');
  if (many) {
    L.push('Written by bench/run.ts; this file merges the runs below (a run given `--only` replaces just the workloads it measured; each section says which run it is from):', '');
    for (const r of runs) L.push(`- ${runLine(r)}`);
  } else L.push(`Written by ${runLine(latest)}.`);
  L.push('');
  L.push(`- Machine: ${m.nproc} CPUs (nproc), CPU model "${m.cpu}", ${m.memGiB.toFixed(0)} GiB RAM, Linux ${m.kernel}, ${m.fs}`);
  L.push(`- Node ${m.node}; ferry ${latest.ferryVersion}`);
  L.push(`- Peers: ${latest.versions.map(([k, v]) => `${k} ${v}`).join('; ')}`);
  L.push(`- Repetitions as listed above; tools alternate (forward order on odd repetitions, reverse on even ones); \`sync\` runs untimed before each timed run; page cache warm (sources read once before timing).`);
  L.push(`- Every transfer is verified after it is timed (size + sha256 of every result file; trees compared file by file); a run whose result is wrong counts as failed.`);
  L.push(`- Times are wall clock from spawning the client until it (and, for nc, the listener) exited. Client peak RSS: \`/usr/bin/time -v\` "Maximum resident set size" (largest process of the command). ferry server peak RSS: VmHWM from /proc/PID/status just before SIGTERM.`);
  L.push(
    `- CPU: the client's user and sys seconds from \`/usr/bin/time -v\` (the command and every process it waited for: ssh under scp, …). The server side's from /proc/PID/stat of the long-lived server, read just before the client starts and again once the processes it forked for this session are gone: utime+stime (all its threads) + cutime+cstime (the per-connection children it reaped — sshd's session and \`scp -t\`/internal-sftp, rsync's and vsftpd's connection processes — each of which reaped its own the same way), plus any descendant still alive, from its own stat. nc's listener runs under \`/usr/bin/time -v\` like the client. Tick size 10 ms; medians over the runs, each field on its own.`,
  );
  L.push(`- **ferry ×** = this row's median time ÷ the ferry reference row's (in bold) median time, same direction: how many times faster ferry is than this tool (> 1.00: ferry wins).`);
  L.push(`- In commands, \`ferry\` is \`node dist/bin/cli/main.js\`, \`$T\` the run's temp dir (under /tmp, removed at the end), \`$PASS\` the throwaway FTP password, PORT a free port picked per run.`);
  L.push('');
  const notes = runs.flatMap((r) => r.notes.map((n) => (many ? `(${when(r.started)}) ${n}` : n)));
  if (notes.length) {
    L.push('## Notes from the run' + (many ? 's' : ''), '');
    for (const n of notes) L.push(`- ${n}`);
    L.push('');
  }

  L.push(...targetTable(`Targets of issue 11 (${many ? 'runs as dated' : 'this run'})`, issue11Targets(ds), many));
  L.push(...targetTable(`Targets of issue 12 (${many ? 'runs as dated' : 'this run'})`, issue12Targets(ds), many));

  const from = (run: string): string[] => (many ? [`Measured in the run of ${when(run)}.`, ''] : []);
  const big = ds.workloads.find((w) => w.id === 'big');
  const durable = ds.workloads.find((w) => w.id === 'durable');
  const trees = ds.workloads.filter((w) => w.id.startsWith('tree-')); // in the dataset's order
  const conc = ds.workloads.find((w) => w.id === 'concurrent');

  const sections: Array<[WorkloadResult & { run: string }, 'MiB/s' | 'files/s' | 'total', string, boolean]> = [];
  if (big) sections.push([big, 'MiB/s', '1. ', true]);
  trees.forEach((t, i) => sections.push([t, 'files/s', `2${String.fromCharCode(97 + i)}. `, false]));
  if (conc) sections.push([conc, 'total', '3. ', false]);
  if (durable) sections.push([durable, 'MiB/s', '4. ', true]);
  for (const [w, unit, num, withCpu] of sections) {
    L.push(`## ${num}${w.title}`, '', ...from(w.run));
    for (const n of w.notes) L.push(`- ${n}`);
    if (w.notes.length) L.push('');
    const dirs = [...new Set(w.rows.map((r) => r.direction))];
    for (const d of dirs) {
      const rows = w.rows.filter((r) => r.direction === d);
      L.push(`### ${d}`, '', ...table(rows, unit), '');
      if (withCpu && rows.some((r) => r.cpu && r.medianS !== undefined)) {
        L.push(`CPU-seconds per GiB moved, ${d} (medians; "all" = client user + sys + server user + sys; CPU ÷ wall = cores kept busy on average):`, '', ...cpuTable(rows), '');
      }
    }
    if (w.servers.length) {
      L.push('ferry server peak RSS (VmHWM over this workload):', '');
      for (const s of w.servers) L.push(`- ${s.label}: ${mb(s.peakRssKb)}${s.exitCode !== undefined && s.exitCode !== 0 ? ` (exit code on SIGTERM: ${s.exitCode})` : ''} — \`${s.command}\``);
      L.push('');
    }
  }

  if (ds.cold) renderCold(L, ds.cold, from(ds.cold.run));

  L.push('## How the peers were set up', '');
  L.push('All on 127.0.0.1, high ports, throwaway configs and keys under the run\'s temp dir, every process stopped by PID at the end (see ../shared/PEERS.md):');
  L.push('- sshd: private config, own ed25519 host key, key-only root login with a throwaway ed25519 key, `UsePAM no`, `StrictModes no`, `Subsystem sftp internal-sftp`; `sshd -D -e -f CONFIG`. scp/sftp options: `-F /dev/null -P PORT -i KEY -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes`.');
  L.push('- rsync daemon: `rsync --daemon --no-detach --address 127.0.0.1 --port PORT --config F`, `use chroot = no`, module `up` writable, module `data` read-only.');
  L.push('- vsftpd: standalone `listen=YES`, `background=NO`, a throwaway local user (`ferrybench`, random password, removed at the end), writes enabled, passive ports in a high range with `pasv_address=127.0.0.1`, `seccomp_sandbox=NO`. lftp with `set ftp:ssl-allow no`.');
  L.push('- nc: netcat-openbsd; the listener is started first (its readiness read from /proc/net/tcp), the time runs from the client\'s start until both exited.');
  L.push('- ferry: `ferry serve --host 127.0.0.1 --port 0 --root DIR` (and `--no-fsync`), one fresh server (and root) per workload; its log goes to a file. `--tls` rows: `ferry serve --tls --no-fsync` with its self-signed certificate (kept under DIR/.ferry/tls), the client pinning it with `--fingerprint SHA256:…` from the server\'s log (no known_hosts file written).');
  L.push('');
  return L.join('\n');
}

function renderCold(L: string[], cold: ColdResult, from: string[]): void {
  L.push('## CLI start-up (cold start of a process, files in page cache)', '', ...from, `Measured with ${cold.tool}.`, '');
  for (const n of cold.notes) L.push(`- ${n}`);
  if (cold.notes.length) L.push('');
  const floor = cold.rows.find((r) => r.floor)?.medianMs;
  L.push('| command | median ms | × node -e 0 | mean ms | min–max ms | runs | peak RSS | |', '| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of cold.rows) {
    if (r.medianMs === undefined) L.push(`| ${code(r.command)} | — | — | — | — | — | ${mb(r.rssKb)} | ${esc(r.error ?? 'not measured')} |`);
    else L.push(`| ${code(r.command)} | ${r.medianMs.toFixed(1)} | ${floor ? f2(r.medianMs / floor) : '—'} | ${(r.meanMs ?? NaN).toFixed(1)} | ${(r.minMs ?? NaN).toFixed(1)}–${(r.maxMs ?? NaN).toFixed(1)} | ${r.runs ?? ''} | ${mb(r.rssKb)} | |`);
  }
  L.push('');
}
