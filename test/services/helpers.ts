import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino, type Logger } from 'pino';
import { createServer, type FerryServer, type ListeningAddress, type ServerOptions } from '../../src/index.js';

/** The built CLI (tests run from dist/test/services/). */
export const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/cli/main.js');

export async function tempDir(prefix = 'ferry-svc-'): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A pino logger whose records the test can read. */
export function captureLogger(): { log: Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void records.push(JSON.parse(line) as Record<string, unknown>) });
  return { log, records };
}

export interface RunningServer {
  server: FerryServer;
  address: ListeningAddress;
  rawPort: number;
  root: string;
  records: Record<string, unknown>[];
  stop(): Promise<void>;
}

/** A real server on 127.0.0.1 (free ports) with a raw ingest port and a captured log. */
export async function startServer(options: ServerOptions & { root: string }): Promise<RunningServer> {
  const { log, records } = captureLogger();
  const server = createServer({ host: '127.0.0.1', port: 0, rawPort: 0, logger: log, ...options });
  const address = await server.listen();
  return {
    server,
    address,
    rawPort: server.rawAddress?.port ?? 0,
    root: options.root,
    records,
    stop: () => server.close(300),
  };
}

/** Polls `check` until it is true, or fails after `ms`. */
export async function eventually(check: () => Promise<boolean> | boolean, what: string, ms = 4000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Sends `data` over a plain TCP connection, half-closes, and resolves when the server closes. */
export function rawUpload(port: number, data: Buffer): Promise<{ reset: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    let reset = false;
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') reset = true;
      else reject(error);
    });
    socket.on('close', () => resolve({ reset }));
    socket.resume();
    socket.end(data);
  });
}

/** Connects and resolves once connected. */
export function connectRaw(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Visible files under `dir` in the store (relative names), sorted. */
export async function filesUnder(root: string, dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(path.join(root, dir))).sort();
  } catch {
    return [];
  }
}

export async function temporaries(root: string): Promise<string[]> {
  return fs.readdir(path.join(root, '.ferry', 'tmp'));
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion (killed after `timeoutMs`), feeding `input` on stdin. */
export function runCli(
  args: string[],
  options: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CliResult> {
  const child = spawnCli(args, options);
  child.process.stdin?.end(options.input ?? '');
  return child.exited(options.timeoutMs ?? 10_000);
}

export interface CliProcess {
  process: ChildProcess;
  readonly stdout: string;
  readonly stderr: string;
  /** Waits until stdout matches `pattern`; returns the match. */
  waitForOutput(pattern: RegExp, ms?: number): Promise<RegExpMatchArray>;
  exited(ms?: number): Promise<CliResult>;
}

/** Starts a long-running CLI process (a server, a shell). */
export function spawnCli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): CliProcess {
  return spawnWatched(process.execPath, [CLI, ...args], options);
}

export function spawnWatched(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): CliProcess {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  // Tests choose the server explicitly; a CI flag would hide the progress bars a TTY test expects.
  for (const key of ['FERRY_SERVER', 'CI']) if (options.env?.[key] === undefined) delete env[key];
  const child = spawn(command, args, { cwd: options.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<CliResult>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return {
    process: child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    async waitForOutput(pattern, ms = 5000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const match = stdout.match(pattern);
        if (match) return match;
        if (child.exitCode !== null || Date.now() > deadline) {
          throw new Error(`no output matching ${pattern}; stdout: ${JSON.stringify(stdout)} stderr: ${JSON.stringify(stderr)}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async exited(ms = 10_000) {
      const timer = setTimeout(() => child.kill('SIGKILL'), ms);
      try {
        return await exit;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** A port that was free a moment ago (for peers such as `nc -l` that need one chosen for them). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
