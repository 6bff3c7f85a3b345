// CPU time of long-lived servers (ferry serve, rsync daemon, sshd, vsftpd) over one timed run,
// read from /proc/PID/stat. A server's own threads are in its utime/stime; the per-connection
// processes it forks (sshd's session and `scp -t`, rsync's and vsftpd's connection children)
// are in its cutime/cstime once it has reaped them, and each of them has reaped its own
// children the same way, so after the session's processes are gone the delta of
// utime+stime+cutime+cstime is the whole session's CPU. Processes still alive (not yet reaped)
// are added from their own stat, so a snapshot is never short while the session winds down.
import { readdir, readFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { sleep } from './proc.js';

export interface CpuTimes {
  userS: number;
  sysS: number;
}

let ticksPerSecond = 0;
function clockTicks(): number {
  if (ticksPerSecond === 0) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + cutime, stime + cstime, in clock ticks. */
  user: number;
  sys: number;
}

/** Fields of /proc/PID/stat after the command name (which may hold spaces and parentheses). */
function parseStat(pid: number, text: string): ProcStat | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const f = text.slice(close + 2).split(' ');
  // f[0] is field 3 (state): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17
  const n = (field: number): number => Number(f[field - 3]);
  return { pid, ppid: n(4), user: n(14) + n(16), sys: n(15) + n(17) };
}

async function allStats(): Promise<ProcStat[]> {
  const out: ProcStat[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const s = parseStat(Number(name), await readFile(`/proc/${name}/stat`, 'utf8'));
      if (s) out.push(s);
    } catch {
      /* exited while we looked */
    }
  }
  return out;
}

export interface TreeCpu extends CpuTimes {
  /** PIDs of the live descendants at the time of the snapshot. */
  descendants: number[];
}

/** CPU of `pid`, its reaped children and its live descendants; null if pid is gone. */
export async function treeCpu(pid: number): Promise<TreeCpu | null> {
  const stats = await allStats();
  const root = stats.find((s) => s.pid === pid);
  if (!root) return null;
  const children = new Map<number, ProcStat[]>();
  for (const s of stats) {
    const list = children.get(s.ppid);
    if (list) list.push(s);
    else children.set(s.ppid, [s]);
  }
  let user = 0;
  let sys = 0;
  const descendants: number[] = [];
  const stack = [root];
  while (stack.length) {
    const s = stack.pop() as ProcStat;
    user += s.user;
    sys += s.sys;
    if (s !== root) descendants.push(s.pid);
    stack.push(...(children.get(s.pid) ?? []));
  }
  const hz = clockTicks();
  return { userS: user / hz, sysS: sys / hz, descendants };
}

export interface CpuMeter {
  /** CPU used since start(), once the processes the run forked are gone (waits up to 5 s). */
  stop(): Promise<(CpuTimes & { settled: boolean }) | null>;
}

/** Starts measuring the CPU a server uses from now on (see the file comment). */
export async function startCpuMeter(pid: number): Promise<CpuMeter> {
  const before = await treeCpu(pid);
  const baseline = new Set(before?.descendants ?? []);
  const isNew = (t: TreeCpu): boolean => t.descendants.some((d) => !baseline.has(d));
  return {
    async stop() {
      if (!before) return null;
      // A snapshot is not atomic: a child reaped between reading its parent and reading its own
      // stat is in neither. So wait until the session's processes are gone AND two snapshots
      // in a row agree; from then on nothing moves.
      let prev: TreeCpu | null = null;
      let after = await treeCpu(pid);
      const end = Date.now() + 5000;
      while (after && Date.now() < end && (isNew(after) || !prev || prev.userS !== after.userS || prev.sysS !== after.sysS)) {
        await sleep(20);
        prev = after;
        after = await treeCpu(pid);
      }
      if (!after) return null;
      return {
        userS: Math.max(0, after.userS - before.userS),
        sysS: Math.max(0, after.sysS - before.sysS),
        settled: !isNew(after),
      };
    },
  };
}
