// Workload 3: N clients at once (100; 20 with --quick), each downloading a 1 MiB file, and each
// uploading one. Timed from launching all N processes until the last has exited; every result
// is verified. Peers: curl + vsftpd (FTP), rsync daemon.
import path from 'node:path';
import { describeFailure, ferryUsageError, runCases, type Case, type Sample } from '../lib/bench.js';
import { display, ferryTransferCmd, type Ctx } from '../lib/context.js';
import { verifyFile } from '../lib/data.js';
import { runShell, sh } from '../lib/proc.js';
import type { FerryServer } from '../peers/ferry.js';
import { ensureDir, ferrySeed, ftpUrl, peerProblem, rmrf, skipFailed, startFerryPair, stopFerry, type Peers, type WorkloadResult } from './common.js';

export interface SmallData {
  file: string;
  size: number;
  sha256: string;
}

const pad = (i: number): string => String(i).padStart(3, '0');

/** A case that runs n commands at once; each `make(i)` gives command i. */
function manyCase(
  c: Omit<Case, 'run' | 'verify' | 'command'> & { n: number; make: (i: string, rep: string) => string; verifyOne: (i: string, rep: string) => Promise<string | null>; ctx: Ctx },
): Case {
  let rep = 0;
  const { n, make, verifyOne, ctx, ...rest } = c;
  return {
    ...rest,
    command: `${n} × at once (i = 000…${pad(n - 1)}): ${display(ctx, make('{i}', '{rep}'))}`,
    prepare: async () => {
      rep++;
      if (c.prepare) await c.prepare();
    },
    run: async (): Promise<Sample> => {
      const t0 = process.hrtime.bigint();
      const rs = await Promise.all(Array.from({ length: n }, (_, i) => runShell(make(pad(i), String(rep)), { timeoutMs: c.timeoutMs })));
      const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
      const rss = Math.max(...rs.map((r) => r.maxRssKb ?? 0));
      const bad = rs.filter((r) => r.code !== 0 || r.timedOut);
      const first = bad[0];
      if (first) {
        const uns = c.isFerry ? ferryUsageError(first) : null;
        return { ok: false, wallS, rssKb: rss || null, error: `${bad.length} of ${n} clients failed; first: ${uns ?? describeFailure(first)}` };
      }
      return { ok: true, wallS, rssKb: rss || null };
    },
    verify: async () => {
      const errs = (await Promise.all(Array.from({ length: n }, (_, i) => verifyOne(pad(i), String(rep))))).filter((e) => e !== null);
      return errs.length ? `${errs.length} of ${n} results wrong; first: ${errs[0]}` : null;
    },
  };
}

export async function concurrentWorkload(ctx: Ctx, peers: Peers, data: SmallData, reps: number): Promise<WorkloadResult> {
  const { T } = ctx;
  const n = ctx.sizes.concurrentClients;
  const id = 'concurrent';
  const title = `${n} clients at once, 1 MiB each`;
  const timeoutMs = 180_000;
  const base = { bytes: n * data.size, files: n, timeoutMs, ctx, n };
  const want = { size: data.size, sha256: data.sha256 };
  const src = data.file;
  const notes: string[] = [];
  const servers: WorkloadResult['servers'] = [];
  const cases: Case[] = [];
  const pair = await startFerryPair(ctx, id, { nofsync: true, fsync: true });
  notes.push(...pair.notes);

  // ---- downloads
  {
    const s = pair.nofsync;
    const out = ensureDir(path.join(T, 'down', id, 'ferry'));
    let skip: Case['skip'];
    if (typeof s === 'string') skip = { status: 'failed', reason: s };
    else {
      const seed = await ferrySeed(ctx, s, ['put', src, '--as', 'conc/c1m.bin', '--overwrite']);
      if (seed.error) skip = { status: 'failed', reason: seed.error };
    }
    const target = typeof s === 'string' ? { addr: '?', clientArgs: [] } : s;
    cases.push(
      manyCase({
        tool: 'ferry get',
        direction: 'download',
        isFerry: true,
        reference: true,
        ...base,
        ...(skip ? { skip } : {}),
        make: (i) => ferryTransferCmd(ctx, target, ['get', 'conc/c1m.bin', '-o', path.join(out, `c${i}.bin`), '--quiet']),
        prepare: async () => {
          rmrf(out);
          ensureDir(out);
        },
        verifyOne: (i) => verifyFile(path.join(out, `c${i}.bin`), want),
      }),
    );
  }
  const ftp = peers.ftp;
  {
    const out = ensureDir(path.join(T, 'down', id, 'curl'));
    cases.push(
      manyCase({
        tool: 'FTP: vsftpd + curl',
        direction: 'download',
        ...base,
        ...skipFailed(peerProblem(ftp, ['/usr/bin/curl'])),
        make: (i) => (typeof ftp === 'string' ? '' : `curl -sS --fail -u ${ftp.user}:${ftp.pass} -o ${sh(path.join(out, `c${i}.bin`))} ${ftpUrl(ftp, `data/${path.basename(src)}`)}`),
        prepare: async () => {
          rmrf(out);
          ensureDir(out);
        },
        verifyOne: (i) => verifyFile(path.join(out, `c${i}.bin`), want),
      }),
    );
  }
  const rs = peers.rsync;
  const rsUrl = typeof rs === 'string' ? 'rsync://?' : rs.url;
  {
    const out = ensureDir(path.join(T, 'down', id, 'rsync'));
    cases.push(
      manyCase({
        tool: 'rsync daemon',
        direction: 'download',
        ...base,
        ...skipFailed(peerProblem(rs, ['/usr/bin/rsync'])),
        make: (i) => `rsync --whole-file ${rsUrl}/data/${path.basename(src)} ${sh(path.join(out, `c${i}.bin`))}`,
        prepare: async () => {
          rmrf(out);
          ensureDir(out);
        },
        verifyOne: (i) => verifyFile(path.join(out, `c${i}.bin`), want),
      }),
    );
  }

  // ---- uploads (a fresh name per repetition: r<rep>-c<i>.bin)
  const ferryUp = (s: FerryServer | string, label: string, reference: boolean): Case => {
    const target = typeof s === 'string' ? { addr: '?', clientArgs: [] } : s;
    const root = typeof s === 'string' ? '/nonexistent' : s.root;
    return manyCase({
      tool: label,
      direction: 'upload',
      isFerry: true,
      reference,
      ...base,
      ...skipFailed(typeof s === 'string' ? s : null),
      make: (i, rep) => ferryTransferCmd(ctx, target, ['put', src, '--as', `conc-up/r${rep}-c${i}.bin`, '--overwrite', '--quiet']),
      verifyOne: (i, rep) => verifyFile(path.join(root, 'conc-up', `r${rep}-c${i}.bin`), want),
    });
  };
  cases.push(ferryUp(pair.nofsync, 'ferry put (--no-fsync)', true));
  cases.push(ferryUp(pair.fsync, 'ferry put (fsync, default)', false));
  {
    const dir = ensureDir(path.join(T, 'up', 'ftp'), true);
    cases.push(
      manyCase({
        tool: 'FTP: vsftpd + curl',
        direction: 'upload',
        ...base,
        ...skipFailed(peerProblem(ftp, ['/usr/bin/curl'])),
        make: (i, rep) => (typeof ftp === 'string' ? '' : `curl -sS --fail -u ${ftp.user}:${ftp.pass} -T ${sh(src)} ${ftpUrl(ftp, `up/ftp/conc-r${rep}-c${i}.bin`)}`),
        verifyOne: (i, rep) => verifyFile(path.join(dir, `conc-r${rep}-c${i}.bin`), want),
      }),
    );
  }
  {
    const dir = ensureDir(path.join(T, 'up', 'rsync'));
    cases.push(
      manyCase({
        tool: 'rsync daemon',
        direction: 'upload',
        ...base,
        ...skipFailed(peerProblem(rs, ['/usr/bin/rsync'])),
        make: (i, rep) => `rsync --whole-file ${sh(src)} ${rsUrl}/up/conc-r${rep}-c${i}.bin`,
        verifyOne: (i, rep) => verifyFile(path.join(dir, `conc-r${rep}-c${i}.bin`), want),
      }),
    );
  }

  const rows = await runCases(title, cases, reps, ctx.log);
  await stopFerry(ctx, pair.nofsync, 'ferry serve --no-fsync (downloads, uploads with --no-fsync)', servers);
  await stopFerry(ctx, pair.fsync, 'ferry serve (fsync, default)', servers);
  return { id, title, rows, notes, servers };
}
