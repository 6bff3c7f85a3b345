// Workload 2: many small files in a tree (10,000 × 1 KiB and 1,000 × 4 KiB), upload and
// download. Peers: scp -r, sftp put/get -r, rsync daemon -r, lftp mirror (-R) with 1 and 4
// connections. ferry: `ferry put -r DIR` / `ferry get -r NAME -o DEST` (issue 5); a usage
// error is recorded as "not yet supported".
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { ferryUsageError, runCases, type Case } from '../lib/bench.js';
import { display, ferryTransferCmd, type Ctx } from '../lib/context.js';
import { verifyTree, type Manifest } from '../lib/data.js';
import { sh } from '../lib/proc.js';
import type { FerryServer } from '../peers/ferry.js';
import { ensureDir, ferrySeed, lftpCmd, peerProblem, setAside, skipFailed, startFerryPair, stopFerry, type Peers, type WorkloadResult } from './common.js';

export interface TreeData {
  name: string;
  dir: string;
  count: number;
  size: number;
  manifest: Manifest;
}

/**
 * `only: 'rsync'` (the 100,000-file tree) runs ferry (durable) and the rsync daemon alone: the
 * others take minutes there and the point is ferry's RSS and its ratio to rsync.
 */
export async function treeWorkload(ctx: Ctx, peers: Peers, tree: TreeData, reps: number, opts: { only?: 'rsync' } = {}): Promise<WorkloadResult> {
  const { T } = ctx;
  const id = `tree-${tree.name}`;
  const title = `${tree.count.toLocaleString('en-US')} × ${tree.size / 1024} KiB tree`;
  const all = opts.only === undefined;
  const timeoutMs = ctx.mode === 'quick' ? 60_000 : tree.count > 20_000 ? 1_800_000 : 600_000;
  const base = { bytes: tree.count * tree.size, files: tree.count, timeoutMs };
  const src = tree.dir;
  const want = tree.manifest;
  const down = ensureDir(path.join(T, 'down', id));
  const notes: string[] = [];
  const servers: WorkloadResult['servers'] = [];
  const cases: Case[] = [];

  const pair = await startFerryPair(ctx, id, { nofsync: all, fsync: true });
  notes.push(...pair.notes);
  notes.push('Between runs each output tree is set aside (renamed into the run\'s temp dir, deleted at the end) rather than deleted: for a minute or more after thousands of deletions, ext4 makes every new inode\'s allocation scan past the recently deleted ones, which had made each run measure the filesystem more than the tool (runs before 2026-11-22 14:00 UTC deleted).');
  if (!all) notes.push('ferry (durable, one server for uploads and downloads) and the rsync daemon only; one fresh ferry server, so its peak RSS is this workload\'s.');
  const pidOf = (p: { daemon: { pid: number } } | string): { serverPid?: number } => (typeof p === 'string' ? {} : { serverPid: p.daemon.pid });

  const ferryPut = (s: FerryServer | string, label: string, reference: boolean): Case => {
    if (typeof s === 'string') return { tool: label, direction: 'upload', command: 'ferry put -r …', isFerry: true, reference, ...base, skip: { status: 'failed', reason: s }, verify: async () => null };
    // `put -r DIR` stores every file as basename(DIR)/relative/path
    const cmd = ferryTransferCmd(ctx, s, ['put', '-r', src, '--quiet']);
    const stored = path.join(s.root, path.basename(src));
    return {
      tool: label,
      direction: 'upload',
      command: display(ctx, cmd),
      cmd,
      isFerry: true,
      reference,
      ...base,
      serverPid: s.daemon.pid,
      // Set aside on disk like the peers' outputs (the server holds nothing open in it between runs).
      prepare: async () => setAside(ctx, stored),
      verify: () => verifyTree(stored, want),
      cleanup: async () => setAside(ctx, stored),
      unsupported: ferryUsageError,
    };
  };
  cases.push(ferryPut(pair.fsync, 'ferry put -r (fsync, default)', true));
  if (all) cases.push(ferryPut(pair.nofsync, 'ferry put -r (--no-fsync)', false));

  const ssh = peers.ssh;
  const sshProblem = peerProblem(ssh, ['/usr/bin/scp', '/usr/bin/sftp']);
  const o = typeof ssh === 'string' ? '' : ssh.opts;
  const upSsh = ensureDir(path.join(T, 'up', 'ssh'));
  if (all) {
    const dest = path.join(upSsh, `${tree.name}-scp`);
    const cmd = `scp -q -r ${o} ${sh(src)} root@127.0.0.1:${sh(dest)}`;
    cases.push({ tool: 'scp -r', direction: 'upload', command: display(ctx, cmd), cmd, ...base, ...pidOf(ssh), ...skipFailed(sshProblem), prepare: async () => setAside(ctx, dest), verify: () => verifyTree(dest, want), cleanup: async () => setAside(ctx, dest) });
    const dest2 = path.join(upSsh, `${tree.name}-sftp`);
    const cmd2 = `sftp -q -b - ${o} root@127.0.0.1 <<< ${sh(`put -r ${src} ${dest2}`)}`;
    cases.push({ tool: 'sftp put -r', direction: 'upload', command: display(ctx, cmd2), cmd: cmd2, ...base, ...pidOf(ssh), ...skipFailed(sshProblem), prepare: async () => setAside(ctx, dest2), verify: () => verifyTree(dest2, want), cleanup: async () => setAside(ctx, dest2) });
  }
  const rs = peers.rsync;
  const rsProblem = peerProblem(rs, ['/usr/bin/rsync']);
  const rsUrl = typeof rs === 'string' ? 'rsync://?' : rs.url;
  {
    const dest = path.join(T, 'up', 'rsync', tree.name);
    const cmd = `rsync -r --whole-file ${sh(src)}/ ${rsUrl}/up/${tree.name}/`;
    cases.push({ tool: 'rsync daemon -r', direction: 'upload', command: display(ctx, cmd), cmd, ...base, ...pidOf(rs), ...skipFailed(rsProblem), prepare: async () => setAside(ctx, dest), verify: () => verifyTree(dest, want), cleanup: async () => setAside(ctx, dest) });
  }
  const ftp = peers.ftp;
  const ftpProblem = peerProblem(ftp, ['/usr/bin/lftp']);
  const upFtp = ensureDir(path.join(T, 'up', 'ftp'), true);
  for (const n of all ? [1, 4] : []) {
    const dest = path.join(upFtp, `${tree.name}-p${n}`);
    const cmd = typeof ftp === 'string' ? '' : lftpCmd(ftp, `mirror -R --parallel=${n} ${src} up/ftp/${tree.name}-p${n}`);
    cases.push({ tool: `lftp mirror -R --parallel=${n}`, direction: 'upload', command: display(ctx, cmd), cmd, ...base, ...pidOf(ftp), ...skipFailed(ftpProblem), prepare: async () => setAside(ctx, dest), verify: () => verifyTree(dest, want), cleanup: async () => setAside(ctx, dest) });
  }

  // ---- downloads
  {
    const s = all ? pair.nofsync : pair.fsync;
    const out = path.join(down, 'ferry');
    let skip: Case['skip'];
    let cmd = 'ferry get -r …';
    if (typeof s === 'string') skip = { status: 'failed', reason: s };
    else {
      const seed = await ferrySeed(ctx, s, ['put', '-r', src]);
      if (seed.error) skip = { status: seed.usage ? 'unsupported' : 'failed', reason: seed.usage ? `not yet supported: ${seed.error}` : seed.error };
      cmd = ferryTransferCmd(ctx, s, ['get', '-r', path.basename(src), '-o', out, '--quiet']);
    }
    // The upload cases on this server remove the tree after each run: put it back (untimed) first.
    const reseed = async (): Promise<void> => {
      if (typeof s === 'string') return;
      const stored = await stat(path.join(s.root, path.basename(src))).catch(() => undefined);
      if (!stored) {
        const again = await ferrySeed(ctx, s, ['put', '-r', src]);
        if (again.error) throw new Error(again.error);
      }
    };
    cases.push({ tool: 'ferry get -r', direction: 'download', command: display(ctx, cmd), cmd, isFerry: true, reference: true, ...base, ...pidOf(s), ...(skip ? { skip } : {}), prepare: async () => { setAside(ctx, out); await reseed(); }, verify: () => verifyTree(out, want), cleanup: async () => setAside(ctx, out), unsupported: ferryUsageError });
  }
  if (all) {
    const out = path.join(down, 'scp');
    const cmd = `scp -q -r ${o} root@127.0.0.1:${sh(src)} ${sh(out)}`;
    cases.push({ tool: 'scp -r', direction: 'download', command: display(ctx, cmd), cmd, ...base, ...pidOf(ssh), ...skipFailed(sshProblem), prepare: async () => setAside(ctx, out), verify: () => verifyTree(out, want), cleanup: async () => setAside(ctx, out) });
    const out2 = path.join(down, 'sftp');
    const cmd2 = `sftp -q -b - ${o} root@127.0.0.1 <<< ${sh(`get -r ${src} ${out2}`)}`;
    cases.push({ tool: 'sftp get -r', direction: 'download', command: display(ctx, cmd2), cmd: cmd2, ...base, ...pidOf(ssh), ...skipFailed(sshProblem), prepare: async () => setAside(ctx, out2), verify: () => verifyTree(out2, want), cleanup: async () => setAside(ctx, out2) });
  }
  {
    const out = path.join(down, 'rsync');
    const cmd = `rsync -r --whole-file ${rsUrl}/data/${tree.name}/ ${sh(out)}/`;
    cases.push({ tool: 'rsync daemon -r', direction: 'download', command: display(ctx, cmd), cmd, ...base, ...pidOf(rs), ...skipFailed(rsProblem), prepare: async () => setAside(ctx, out), verify: () => verifyTree(out, want), cleanup: async () => setAside(ctx, out) });
  }
  for (const n of all ? [1, 4] : []) {
    const out = path.join(down, `lftp-p${n}`);
    const cmd = typeof ftp === 'string' ? '' : lftpCmd(ftp, `mirror --parallel=${n} data/${tree.name} ${out}`);
    cases.push({ tool: `lftp mirror --parallel=${n}`, direction: 'download', command: display(ctx, cmd), cmd, ...base, ...pidOf(ftp), ...skipFailed(ftpProblem), prepare: async () => setAside(ctx, out), verify: () => verifyTree(out, want), cleanup: async () => setAside(ctx, out) });
  }

  const rows = await runCases(title, cases, reps, ctx.log);
  await stopFerry(ctx, pair.fsync, 'ferry serve (fsync, default)', servers);
  if (all) await stopFerry(ctx, pair.nofsync, 'ferry serve --no-fsync (uploads with --no-fsync, downloads)', servers);
  return { id, title, rows, notes, servers, ...(all ? {} : { rssTarget: true }) };
}
