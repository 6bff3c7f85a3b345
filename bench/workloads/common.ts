// What the workloads share: the running peers, ferry servers for one workload, helpers.
import { mkdirSync, rmSync, chownSync, existsSync, renameSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type { Row } from '../lib/bench.js';
import { display, ferryCmd, ferryTransferCmd, type Ctx } from '../lib/context.js';
import { firstLines, runShell, sh } from '../lib/proc.js';
import { has } from '../peers/install.js';
import { startFerry, type FerryServer } from '../peers/ferry.js';
import type { SshPeer } from '../peers/sshd.js';
import type { RsyncPeer } from '../peers/rsyncd.js';
import type { FtpPeer } from '../peers/vsftpd.js';

export interface Peers {
  ssh: SshPeer | string;
  rsync: RsyncPeer | string;
  ftp: FtpPeer | string;
}

export interface ServerStat {
  label: string;
  command: string;
  peakRssKb: number | null;
  exitCode?: number | null;
}

export interface WorkloadResult {
  id: string;
  title: string;
  rows: Row[];
  notes: string[];
  servers: ServerStat[];
  /** The many-files workload whose ferry peak RSS is an issue-12 target (< 100 MB). */
  rssTarget?: boolean;
}

export function rmrf(p: string): void {
  rmSync(p, { recursive: true, force: true });
}

let setAsideCount = 0;

/**
 * Moves a run's output tree out of the way (one rename into `<T>/set-aside/`) instead of
 * deleting it; they go with the run's temp dir at the end. Why: on ext4, for
 * a minute or more after thousands of files are deleted, each new file's inode allocation
 * scans past the recently deleted ones (perf: `recently_deleted` under `find_inode_bit`, over
 * half the CPU of 10,000 creates), so every tree run that followed a deletion measured that
 * scan more than the tool, whichever tool it was.
 */
export function setAside(ctx: Ctx, p: string): void {
  if (!existsSync(p)) return;
  const place = ensureDir(path.join(ctx.T, 'set-aside'));
  renameSync(p, path.join(place, `${++setAsideCount}`));
}

export function ensureDir(p: string, ftpOwned = false): string {
  mkdirSync(p, { recursive: true });
  if (ftpOwned) {
    const id = spawnSync('id', ['-u', 'ferrybench'], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', 'ferrybench'], { encoding: 'utf8' });
    if (id.status === 0 && gid.status === 0) chownSync(p, Number(id.stdout.trim()), Number(gid.stdout.trim()));
  }
  return p;
}

/** The reason a peer cannot run, or null. */
export function peerProblem(p: unknown, bins: string[] = []): string | null {
  if (typeof p === 'string') return p;
  const missing = bins.filter((b) => !has(b));
  return missing.length ? `not installed: ${missing.join(', ')}` : null;
}

export function skipFailed(reason: string | null): { skip?: { status: 'failed'; reason: string } } {
  return reason ? { skip: { status: 'failed', reason } } : {};
}

/** lftp with the settings used for every FTP command. */
export function lftpCmd(ftp: FtpPeer, commands: string): string {
  const script = [
    'set ftp:ssl-allow no',
    'set cmd:fail-exit yes',
    'set net:max-retries 1',
    'set net:timeout 30',
    'set xfer:clobber on',
    `open -u ${ftp.user},${ftp.pass} -p ${ftp.port} 127.0.0.1`,
    commands,
  ].join('; ');
  return `lftp -c ${sh(script)}`;
}

export function ftpUrl(ftp: FtpPeer, rel: string): string {
  return `ftp://127.0.0.1:${ftp.port}/${rel}`;
}

/**
 * Starts the ferry servers of one workload: `nofsync` (`--no-fsync`, like the peers), `fsync`
 * (the default, durable) and `tls` (`--tls --no-fsync`, beside scp/sftp). When `--no-fsync` is
 * not accepted, `nofsync` falls back to a default server and a note says so.
 */
export async function startFerryPair(
  ctx: Ctx,
  wl: string,
  want: { nofsync: boolean; fsync: boolean; tls?: boolean },
): Promise<{ nofsync: FerryServer | string; fsync: FerryServer | string; tls: FerryServer | string; notes: string[] }> {
  const notes: string[] = [];
  const base = path.join(ctx.T, 'ferry', wl);
  const extraArgs = ctx.ferryServerArgs;
  let nofsync: FerryServer | string = 'not started';
  let fsync: FerryServer | string = 'not started';
  let tls: FerryServer | string = 'not started';
  if (want.fsync) {
    try {
      fsync = await startFerry(path.join(base, 'root-fsync'), base, { noFsync: false, extraArgs }, `${wl}-fsync`);
    } catch (err) {
      fsync = (err as Error).message;
    }
  }
  if (want.nofsync) {
    try {
      nofsync = await startFerry(path.join(base, 'root-nofsync'), base, { noFsync: true, extraArgs }, `${wl}-nofsync`);
    } catch (err) {
      const msg = (err as Error).message;
      try {
        nofsync = await startFerry(path.join(base, 'root-nofsync-fallback'), base, { noFsync: false, extraArgs }, `${wl}-nofsync-fallback`);
        notes.push(`\`ferry serve --no-fsync\` was not accepted (${msg}); the rows labelled "--no-fsync" ran against a default (fsync) server.`);
      } catch (err2) {
        nofsync = `${msg}; default server also failed: ${(err2 as Error).message}`;
      }
    }
  }
  if (want.tls) {
    try {
      tls = await startFerry(path.join(base, 'root-tls'), base, { noFsync: true, tls: true, extraArgs }, `${wl}-tls`);
    } catch (err) {
      tls = (err as Error).message;
    }
  }
  return { nofsync, fsync, tls, notes };
}

export async function stopFerry(ctx: Ctx, s: FerryServer | string, label: string, out: ServerStat[]): Promise<void> {
  if (typeof s === 'string') return;
  const r = await s.stop();
  out.push({ label, command: display(ctx, `ferry ${s.command}`), peakRssKb: r.peakRssKb, exitCode: r.exitCode });
}

/** Removes NAME from a ferry server (ferry rm, falling back to deleting it from the root). */
export async function ferryRemove(ctx: Ctx, s: FerryServer, name: string, recursive: boolean): Promise<void> {
  const args = ['rm', ...(recursive ? ['-r'] : []), name, '-s', s.addr, ...s.clientArgs, '--quiet'];
  const r = await runShell(ferryCmd(ctx, args), { timeoutMs: 20_000, timeV: false });
  const p = path.join(s.root, name);
  if (r.code !== 0 && existsSync(p)) rmrf(p);
}

/** Uploads a file or tree untimed (seeding downloads); returns an error line or null. */
export async function ferrySeed(ctx: Ctx, s: FerryServer, args: string[]): Promise<{ error: string | null; usage: boolean }> {
  const cmd = ferryTransferCmd(ctx, s, [...args, '--quiet']);
  const r = await runShell(cmd, { timeoutMs: 600_000, timeV: false });
  if (r.code === 0) return { error: null, usage: false };
  const text = `${r.stderr}\n${r.stdout}`;
  return { error: `seeding with \`${display(ctx, cmd)}\` failed (exit ${r.code}): ${firstLines(text, 2)}`, usage: r.code === 2 || /unknown (option|command)|too many arguments/i.test(text) };
}
