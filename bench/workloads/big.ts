// Workload 1: one big random file (1 GiB; 64 MiB with --quick), upload and download, page
// cache warm. Peers: nc, scp and sftp (default cipher and aes128-gcm), rsync daemon
// --whole-file, FTP via vsftpd + curl and lftp. ferry with --no-fsync, with fsync and with
// --tls (--no-fsync, beside scp/sftp). Every row also measures CPU: the client's from
// /usr/bin/time -v, the server side's (ferry serve, sshd, rsync daemon, vsftpd, nc's
// listener) over the same run (lib/cpu.ts).
import path from 'node:path';
import { existsSync } from 'node:fs';
import { ferryUsageError, runCases, type Case, type Sample } from '../lib/bench.js';
import { display, ferryTransferCmd, type Ctx } from '../lib/context.js';
import { verifyFile } from '../lib/data.js';
import { freePort, runShell, sh, waitListening } from '../lib/proc.js';
import type { FerryServer } from '../peers/ferry.js';
import {
  ensureDir,
  ferryRemove,
  ferrySeed,
  ftpUrl,
  lftpCmd,
  peerProblem,
  rmrf,
  skipFailed,
  startFerryPair,
  stopFerry,
  type Peers,
  type WorkloadResult,
} from './common.js';

export interface BigData {
  file: string;
  size: number;
  sha256: string;
}

const AES = 'aes128-gcm@openssh.com';

export async function bigWorkload(ctx: Ctx, peers: Peers, data: BigData, opts: { id: string; title: string; reps: number; durable?: boolean }): Promise<WorkloadResult> {
  const { T } = ctx;
  const want = { size: data.size, sha256: data.sha256 };
  const src = data.file;
  const timeoutMs = ctx.mode === 'quick' ? 60_000 : 240_000;
  const base = { bytes: data.size, files: 1, timeoutMs };
  const up = (d: string, ftp = false): string => ensureDir(path.join(T, 'up', d), ftp);
  const down = ensureDir(path.join(T, 'down', opts.id));
  const notes: string[] = [];
  const servers: WorkloadResult['servers'] = [];
  const cases: Case[] = [];

  const pair = await startFerryPair(ctx, opts.id, { nofsync: !opts.durable, fsync: true, tls: !opts.durable });
  notes.push(...pair.notes);
  const pidOf = (p: { daemon: { pid: number } } | string): { serverPid?: number } => (typeof p === 'string' ? {} : { serverPid: p.daemon.pid });

  const putDir = opts.durable ? 'write' : 'upload';
  const ferryPut = (s: FerryServer | string, label: string, reference: boolean): Case => {
    const name = `up/${opts.id}.bin`;
    if (typeof s === 'string') {
      return { tool: label, direction: putDir, command: 'ferry put …', isFerry: true, reference, ...base, skip: { status: 'failed', reason: s }, verify: async () => null };
    }
    const cmd = ferryTransferCmd(ctx, s, ['put', src, '--as', name, '--overwrite', '--quiet']);
    return {
      tool: label,
      direction: putDir,
      command: display(ctx, cmd),
      cmd,
      isFerry: true,
      reference,
      ...base,
      serverPid: s.daemon.pid,
      prepare: () => ferryRemove(ctx, s, name, false),
      verify: () => verifyFile(path.join(s.root, name), want),
      cleanup: () => ferryRemove(ctx, s, name, false),
      unsupported: ferryUsageError,
    };
  };

  if (opts.durable) {
    cases.push(ferryPut(pair.fsync, 'ferry put (fsync, default)', true));
    const dest = path.join(up('dd'), 'durable.bin');
    const cmd = `dd if=${sh(src)} of=${sh(dest)} bs=1M conv=fsync status=none`;
    cases.push({
      tool: 'dd bs=1M conv=fsync',
      direction: 'write',
      command: display(ctx, cmd),
      cmd,
      ...base,
      prepare: async () => rmrf(dest),
      verify: () => verifyFile(dest, want),
      cleanup: async () => rmrf(dest),
    });
    const rows = await runCases(opts.title, cases, opts.reps, ctx.log);
    await stopFerry(ctx, pair.fsync, 'ferry serve (fsync, default)', servers);
    return { id: opts.id, title: opts.title, rows, notes, servers };
  }

  // ---- uploads
  cases.push(ferryPut(pair.nofsync, 'ferry (--no-fsync)', true));
  cases.push(ferryPut(pair.fsync, 'ferry (fsync, default)', false));
  cases.push(ferryPut(pair.tls, 'ferry --tls (--no-fsync)', false));

  // nc: the listener writes the file; timed from the client's start until both have exited
  {
    const dest = path.join(up('nc'), `${opts.id}.bin`);
    const ncUp = { port: 0 };
    const show = (p: string): string => `nc -l 127.0.0.1 ${p} > ${sh(dest)} & nc -N 127.0.0.1 ${p} < ${sh(src)}`;
    cases.push({
      tool: 'nc',
      direction: 'upload',
      command: display(ctx, show('PORT')),
      ...base,
      ...skipFailed(peerProblem(null, ['/usr/bin/nc'])),
      prepare: async () => rmrf(dest),
      run: () => ncRun(ncUp, (p) => `nc -l 127.0.0.1 ${p} > ${sh(dest)}`, (p) => `nc -N 127.0.0.1 ${p} < ${sh(src)}`, timeoutMs),
      verify: () => verifyFile(dest, want),
      cleanup: async () => rmrf(dest),
    });
  }

  const ssh = peers.ssh;
  const sshProblem = peerProblem(ssh, ['/usr/bin/scp', '/usr/bin/sftp']);
  for (const cipher of [null, AES]) {
    const label = cipher ? 'aes128-gcm' : 'default cipher';
    const c = cipher ? ` -c ${cipher}` : '';
    const o = typeof ssh === 'string' ? '' : ssh.opts;
    const dest = path.join(up('ssh'), `${opts.id}-scp.bin`);
    const scp = `scp -q ${o}${c} ${sh(src)} root@127.0.0.1:${sh(dest)}`;
    cases.push({ tool: `scp (${label})`, direction: 'upload', command: display(ctx, scp), cmd: scp, ...base, ...pidOf(ssh), ...skipFailed(sshProblem), prepare: async () => rmrf(dest), verify: () => verifyFile(dest, want), cleanup: async () => rmrf(dest) });
    const dest2 = path.join(up('ssh'), `${opts.id}-sftp.bin`);
    const sftp = `sftp -q -b - ${o}${c} root@127.0.0.1 <<< ${sh(`put ${src} ${dest2}`)}`;
    cases.push({ tool: `sftp (${label})`, direction: 'upload', command: display(ctx, sftp), cmd: sftp, ...base, ...pidOf(ssh), ...skipFailed(sshProblem), prepare: async () => rmrf(dest2), verify: () => verifyFile(dest2, want), cleanup: async () => rmrf(dest2) });
  }

  const rs = peers.rsync;
  const rsProblem = peerProblem(rs, ['/usr/bin/rsync']);
  {
    const url = typeof rs === 'string' ? 'rsync://?' : rs.url;
    const dest = path.join(up('rsync'), `${opts.id}.bin`);
    const cmd = `rsync --whole-file ${sh(src)} ${url}/up/${opts.id}.bin`;
    cases.push({ tool: 'rsync daemon --whole-file', direction: 'upload', command: display(ctx, cmd), cmd, ...base, ...pidOf(rs), ...skipFailed(rsProblem), prepare: async () => rmrf(dest), verify: () => verifyFile(dest, want), cleanup: async () => rmrf(dest) });
  }

  const ftp = peers.ftp;
  {
    const dest = path.join(up('ftp', true), `${opts.id}-curl.bin`);
    const cmd = typeof ftp === 'string' ? '' : `curl -sS --fail -u ${ftp.user}:${ftp.pass} -T ${sh(src)} ${ftpUrl(ftp, `up/ftp/${opts.id}-curl.bin`)}`;
    cases.push({ tool: 'FTP: vsftpd + curl', direction: 'upload', command: display(ctx, cmd), cmd, ...base, ...pidOf(ftp), ...skipFailed(peerProblem(ftp, ['/usr/bin/curl'])), prepare: async () => rmrf(dest), verify: () => verifyFile(dest, want), cleanup: async () => rmrf(dest) });
    const dest2 = path.join(up('ftp', true), `${opts.id}-lftp.bin`);
    const cmd2 = typeof ftp === 'string' ? '' : lftpCmd(ftp, `put ${src} -o up/ftp/${opts.id}-lftp.bin`);
    cases.push({ tool: 'FTP: vsftpd + lftp', direction: 'upload', command: display(ctx, cmd2), cmd: cmd2, ...base, ...pidOf(ftp), ...skipFailed(peerProblem(ftp, ['/usr/bin/lftp'])), prepare: async () => rmrf(dest2), verify: () => verifyFile(dest2, want), cleanup: async () => rmrf(dest2) });
  }

  // ---- downloads
  for (const [s, tool, reference] of [
    [pair.nofsync, 'ferry', true],
    [pair.tls, 'ferry --tls', false],
  ] as const) {
    const out = path.join(down, reference ? 'ferry.bin' : 'ferry-tls.bin');
    let skip: Case['skip'];
    let cmd = 'ferry get …';
    if (typeof s === 'string') skip = { status: 'failed', reason: s };
    else {
      const seed = await ferrySeed(ctx, s, ['put', src, '--as', `${opts.id}.bin`, '--overwrite']);
      if (seed.error) skip = { status: seed.usage ? 'unsupported' : 'failed', reason: seed.error };
      cmd = ferryTransferCmd(ctx, s, ['get', `${opts.id}.bin`, '-o', out, '--quiet']);
    }
    cases.push({
      tool,
      direction: 'download',
      command: display(ctx, cmd),
      cmd,
      isFerry: true,
      reference,
      ...base,
      ...pidOf(s),
      ...(skip ? { skip } : {}),
      prepare: async () => rmrf(out),
      verify: () => verifyFile(out, want),
      cleanup: async () => rmrf(out),
      unsupported: ferryUsageError,
    });
  }
  {
    const out = path.join(down, 'nc.bin');
    const ncDown = { port: 0 };
    const show = (p: string): string => `nc -N -l 127.0.0.1 ${p} < ${sh(src)} & nc -d 127.0.0.1 ${p} > ${sh(out)}`;
    cases.push({
      tool: 'nc',
      direction: 'download',
      command: display(ctx, show('PORT')),
      ...base,
      ...skipFailed(peerProblem(null, ['/usr/bin/nc'])),
      prepare: async () => rmrf(out),
      run: () => ncRun(ncDown, (p) => `nc -N -l 127.0.0.1 ${p} < ${sh(src)}`, (p) => `nc -d 127.0.0.1 ${p} > ${sh(out)}`, timeoutMs),
      verify: () => verifyFile(out, want),
      cleanup: async () => rmrf(out),
    });
  }
  for (const cipher of [null, AES]) {
    const label = cipher ? 'aes128-gcm' : 'default cipher';
    const c = cipher ? ` -c ${cipher}` : '';
    const o = typeof ssh === 'string' ? '' : ssh.opts;
    const out = path.join(down, 'scp.bin');
    const scp = `scp -q ${o}${c} root@127.0.0.1:${sh(src)} ${sh(out)}`;
    cases.push({ tool: `scp (${label})`, direction: 'download', command: display(ctx, scp), cmd: scp, ...base, ...pidOf(ssh), ...skipFailed(sshProblem), prepare: async () => rmrf(out), verify: () => verifyFile(out, want), cleanup: async () => rmrf(out) });
    const out2 = path.join(down, 'sftp.bin');
    const sftp = `sftp -q -b - ${o}${c} root@127.0.0.1 <<< ${sh(`get ${src} ${out2}`)}`;
    cases.push({ tool: `sftp (${label})`, direction: 'download', command: display(ctx, sftp), cmd: sftp, ...base, ...pidOf(ssh), ...skipFailed(sshProblem), prepare: async () => rmrf(out2), verify: () => verifyFile(out2, want), cleanup: async () => rmrf(out2) });
  }
  {
    const url = typeof rs === 'string' ? 'rsync://?' : rs.url;
    const out = path.join(down, 'rsync.bin');
    const cmd = `rsync --whole-file ${url}/data/${path.basename(src)} ${sh(out)}`;
    cases.push({ tool: 'rsync daemon --whole-file', direction: 'download', command: display(ctx, cmd), cmd, ...base, ...pidOf(rs), ...skipFailed(rsProblem), prepare: async () => rmrf(out), verify: () => verifyFile(out, want), cleanup: async () => rmrf(out) });
  }
  {
    const rel = `data/${path.basename(src)}`;
    const out = path.join(down, 'curl.bin');
    const cmd = typeof ftp === 'string' ? '' : `curl -sS --fail -u ${ftp.user}:${ftp.pass} -o ${sh(out)} ${ftpUrl(ftp, rel)}`;
    cases.push({ tool: 'FTP: vsftpd + curl', direction: 'download', command: display(ctx, cmd), cmd, ...base, ...pidOf(ftp), ...skipFailed(peerProblem(ftp, ['/usr/bin/curl'])), prepare: async () => rmrf(out), verify: () => verifyFile(out, want), cleanup: async () => rmrf(out) });
    const out2 = path.join(down, 'lftp.bin');
    const cmd2 = typeof ftp === 'string' ? '' : lftpCmd(ftp, `get ${rel} -o ${out2}`);
    cases.push({ tool: 'FTP: vsftpd + lftp', direction: 'download', command: display(ctx, cmd2), cmd: cmd2, ...base, ...pidOf(ftp), ...skipFailed(peerProblem(ftp, ['/usr/bin/lftp'])), prepare: async () => rmrf(out2), verify: () => verifyFile(out2, want), cleanup: async () => rmrf(out2) });
  }

  const rows = await runCases(opts.title, cases, opts.reps, ctx.log);
  await stopFerry(ctx, pair.nofsync, 'ferry serve --no-fsync (uploads with --no-fsync, all downloads)', servers);
  await stopFerry(ctx, pair.fsync, 'ferry serve (fsync, default)', servers);
  await stopFerry(ctx, pair.tls, 'ferry serve --tls --no-fsync (--tls rows)', servers);
  if (existsSync(path.join(T, 'up', 'nc'))) rmrf(path.join(T, 'up', 'nc'));
  return { id: opts.id, title: opts.title, rows, notes, servers };
}

/**
 * nc run: start the listener (under /usr/bin/time -v), wait until it listens, then time the
 * client from its start until both processes have exited.
 */
async function ncRun(state: { port: number }, listener: (p: number) => string, client: (p: number) => string, timeoutMs: number): Promise<Sample> {
  const port = await freePort();
  state.port = port;
  const lp = runShell(listener(port), { timeoutMs: timeoutMs + 30_000 });
  try {
    await waitListening(port, 10_000);
  } catch (err) {
    const l = await lp;
    return { ok: false, wallS: NaN, rssKb: null, error: `nc listener: ${(err as Error).message} ${l.stderr.trim()}` };
  }
  const t0 = process.hrtime.bigint();
  const c = await runShell(client(port), { timeoutMs });
  const l = await lp;
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  const bad = [c, l].find((r) => r.code !== 0 || r.timedOut);
  const cpu = { clientUserS: c.userS, clientSysS: c.sysS, serverUserS: l.userS, serverSysS: l.sysS };
  if (bad) {
    return { ok: false, wallS, rssKb: c.maxRssKb, rss2Kb: l.maxRssKb, cpu, error: `${bad === c ? 'client' : 'listener'} ${bad.timedOut ? 'timed out' : `exit ${bad.code}`}: ${bad.stderr.trim().slice(0, 200)}` };
  }
  return { ok: true, wallS, rssKb: c.maxRssKb, rss2Kb: l.maxRssKb, cpu };
}
