// Process helpers for the benchmark: timed shell commands under /usr/bin/time -v, background
// daemons tracked by PID, and cleanup of everything this process started.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';

/** Quote one word for bash. */
export function sh(word: string): string {
  if (/^[A-Za-z0-9_\-+=.,/:@%]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  wallS: number;
  /** Peak RSS of the command (largest process in its tree), kB, from /usr/bin/time -v. */
  maxRssKb: number | null;
  /** CPU of the command and every descendant it waited for, from /usr/bin/time -v. */
  userS: number | null;
  sysS: number | null;
  stdout: string;
  stderr: string;
}

const live = new Map<number, { name: string; child: ChildProcess }>();
const tempPaths = new Set<string>();
const cleanupHooks: Array<() => void> = [];

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

let timeFileSeq = 0;
let timeDir = '/tmp';
export function setScratchDir(dir: string): void {
  timeDir = dir;
}

function tail(s: string, n = 4000): string {
  return s.length > n ? s.slice(s.length - n) : s;
}

export function parseMaxRssKb(text: string): number | null {
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(text);
  return m && m[1] ? Number(m[1]) : null;
}

/** "User time (seconds): 1.23" / "System time (seconds): …" of /usr/bin/time -v. */
export function parseTimeSeconds(text: string, which: 'User' | 'System'): number | null {
  const m = new RegExp(`${which} time \\(seconds\\): ([\\d.]+)`).exec(text);
  return m && m[1] ? Number(m[1]) : null;
}

/**
 * Runs `bash -c cmd` under `/usr/bin/time -v`, in its own process group, with a timeout
 * (the whole group is killed on timeout). Wall time is measured here, spawn to exit.
 */
export function runShell(
  cmd: string,
  opts: { timeoutMs: number; cwd?: string; env?: NodeJS.ProcessEnv; timeV?: boolean },
): Promise<RunResult> {
  const useTime = opts.timeV !== false;
  const timeFile = `${timeDir}/time-${process.pid}-${++timeFileSeq}.txt`;
  const argv = useTime ? ['-v', '-o', timeFile, 'bash', '-c', cmd] : ['-c', cmd];
  const bin = useTime ? '/usr/bin/time' : 'bash';
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(bin, argv, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const pid = child.pid;
    if (pid !== undefined) live.set(pid, { name: cmd.slice(0, 60), child });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      stdout = tail(stdout + d);
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr = tail(stderr + d);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (pid !== undefined) killGroup(pid, 'SIGKILL');
    }, opts.timeoutMs);
    const finish = (code: number | null, signal: NodeJS.Signals | null, err?: Error): void => {
      const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
      clearTimeout(timer);
      if (pid !== undefined) {
        live.delete(pid);
        // Whatever the command left behind in its group (it should be nothing).
        killGroup(pid, 'SIGKILL');
      }
      let maxRssKb: number | null = null;
      let userS: number | null = null;
      let sysS: number | null = null;
      if (useTime) {
        try {
          const txt = readFileSync(timeFile, 'utf8');
          maxRssKb = parseMaxRssKb(txt);
          userS = parseTimeSeconds(txt, 'User');
          sysS = parseTimeSeconds(txt, 'System');
          // /usr/bin/time reports the child's exit status; keep ours (bash's) which is the same.
        } catch {
          /* no time file: the command never ran */
        }
        rmSync(timeFile, { force: true });
      }
      if (err) stderr += `\n${err.message}`;
      resolve({ code, signal, timedOut, wallS, maxRssKb, userS, sysS, stdout, stderr });
    };
    child.on('error', (err) => finish(null, null, err));
    child.on('close', (code, signal) => finish(code, signal));
  });
}

/** Runs a command and throws with its stderr if it fails. For setup steps. */
export async function mustShell(cmd: string, timeoutMs = 600_000): Promise<string> {
  const r = await runShell(cmd, { timeoutMs, timeV: false });
  if (r.code !== 0) {
    throw new Error(`command failed (${r.timedOut ? 'timeout' : `exit ${r.code ?? r.signal}`}): ${cmd}\n${firstLines(r.stderr || r.stdout)}`);
  }
  return r.stdout;
}

export function firstLines(s: string, n = 3): string {
  return s
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .slice(0, n)
    .join(' | ');
}

export interface Daemon {
  name: string;
  pid: number;
  child: ChildProcess;
  logPath: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** stdout+stderr seen so far (kept short). */
  output(): string;
  stop(timeoutMs?: number): Promise<void>;
}

/**
 * Starts a long-running process (not via a shell) in its own process group, its output going
 * to logPath. Tracked for cleanup; stop() sends SIGTERM to its PID, then SIGKILL to its group.
 */
export function startDaemon(name: string, argv: string[], logPath: string, opts: { cwd?: string; onLine?: (line: string) => void } = {}): Daemon {
  const [bin, ...args] = argv;
  if (!bin) throw new Error('startDaemon: empty argv');
  const log = createWriteStream(logPath);
  const child = spawn(bin, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  if (child.pid === undefined) {
    // spawn failure is reported through 'error'; make a daemon that is already dead
  }
  const pid = child.pid ?? -1;
  if (pid > 0) live.set(pid, { name, child });
  let seen = '';
  let partial = '';
  const onData = (d: Buffer): void => {
    log.write(d);
    const s = d.toString('utf8');
    seen = tail(seen + s, 8000);
    if (opts.onLine) {
      partial += s;
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) opts.onLine(l);
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('error', (err) => {
      seen += `\n${err.message}`;
      if (pid > 0) live.delete(pid);
      resolve({ code: null, signal: null });
    });
    child.on('exit', (code, signal) => {
      if (pid > 0) live.delete(pid);
      resolve({ code, signal });
    });
  });
  exited.then(() => log.end(), () => log.end());
  let exitState: 'running' | 'exited' = 'running';
  void exited.then(() => {
    exitState = 'exited';
  });
  return {
    name,
    pid,
    child,
    logPath,
    exited,
    output: () => seen,
    async stop(timeoutMs = 5000): Promise<void> {
      if (exitState === 'exited' || pid <= 0) return;
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* gone */
      }
      const t = setTimeout(() => killGroup(pid, 'SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(t);
      // children it forked (sshd/vsftpd/rsync sessions) share its process group
      killGroup(pid, 'SIGKILL');
    },
  };
}

/** Reads a field (kB) from /proc/PID/status, e.g. VmHWM (peak RSS) or VmRSS. */
export async function procStatusKb(pid: number, field: string): Promise<number | null> {
  try {
    const txt = await readFile(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(txt);
    return m && m[1] ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** A free TCP port on 127.0.0.1 (bound and released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** True if something is listening on 127.0.0.1:port (reads /proc/net/tcp; does not connect). */
export async function isListening(port: number): Promise<boolean> {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let txt = '';
    try {
      txt = await readFile(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of txt.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      const local = cols[1];
      const state = cols[3];
      if (local && state === '0A' && local.endsWith(`:${hex}`)) return true;
    }
  }
  return false;
}

export async function waitListening(port: number, timeoutMs: number, alive?: () => boolean): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await isListening(port)) return;
    if (alive && !alive()) throw new Error(`process exited before listening on port ${port}`);
    await sleep(10);
  }
  throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function registerTempPath(p: string): void {
  tempPaths.add(p);
}

export function onCleanup(fn: () => void): void {
  cleanupHooks.push(fn);
}

let cleaned = false;
/** True once cleanup has begun (Ctrl-C): loops stop starting new runs. */
export function isAborting(): boolean {
  return cleaned;
}
/** Stops everything still running that we started (by PID), runs hooks, removes temp dirs. */
export async function cleanupAll(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  for (const [pid] of live) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  if (live.size > 0) await sleep(500);
  for (const [pid] of live) killGroup(pid, 'SIGKILL');
  live.clear();
  for (const fn of cleanupHooks.reverse()) {
    try {
      fn();
    } catch {
      /* best effort */
    }
  }
  for (const p of tempPaths) rmSync(p, { recursive: true, force: true });
}

/** Synchronous last-resort cleanup for process 'exit'. */
export function cleanupSync(): void {
  if (cleaned) return;
  cleaned = true;
  for (const [pid] of live) killGroup(pid, 'SIGKILL');
  for (const fn of cleanupHooks.reverse()) {
    try {
      fn();
    } catch {
      /* best effort */
    }
  }
  for (const p of tempPaths) rmSync(p, { recursive: true, force: true });
}
