import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';

/** The built CLI entry point, run as a real child process. */
export const CLI = fileURLToPath(new URL('../../bin/cli/main.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Raw stdout, when run with `binary`. */
  stdoutBytes?: Buffer;
}

/** Runs `ferry ARGS` to completion (killed after `timeoutMs`). */
export function runCli(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string; timeoutMs?: number; binary?: boolean } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, FERRY_SERVER: '', ...options.env },
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const bytes = Buffer.concat(out);
      resolve({ code, stdout: bytes.toString(), stderr, stdoutBytes: options.binary ? bytes : undefined });
    });
    // A command may end without reading all its input (a refused upload): that is not the test's error.
    child.stdin.on('error', () => undefined);
    child.stdin.end(Buffer.from(options.input ?? '', 'latin1'));
  });
}

export interface ServeProcess {
  child: ChildProcess;
  port: number;
  /** The raw ingest port, when started with --raw-port. */
  rawPort: number | undefined;
  /** The TLS certificate fingerprint, when started with --tls. */
  fingerprint: string | undefined;
  output: () => string;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `ferry serve --port 0 ...` and waits for its "listening on" line. */
export function startServeProcess(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ServeProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', ...args], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const wantsRaw = args.includes('--raw-port');
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start: ${output}`));
    }, 10_000);
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    const onData = (d: Buffer): void => {
      output += d.toString();
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(output);
      const raw = /raw ingest listening on 127\.0\.0\.1:(\d+)/.exec(output);
      if (match && (!wantsRaw || raw)) {
        clearTimeout(timer);
        resolve({
          child,
          port: Number(match[1]),
          rawPort: raw ? Number(raw[1]) : undefined,
          fingerprint: /fingerprint (SHA256:[A-Za-z0-9+/]+)/.exec(output)?.[1],
          output: () => output,
          stop: async (signal = 'SIGTERM') => {
            child.kill(signal);
            return exited;
          },
        });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${output}`));
    });
  });
}

export interface ServeSuite {
  /** A temporary folder for the suite's local files (the store is `work/store`). */
  work: string;
  server: ServeProcess;
  /** "127.0.0.1:PORT", for -s. */
  address: string;
}

/**
 * A `ferry serve` child process for one describe block: started in `before`, stopped and its
 * folder removed in `after`. Read the fields inside tests, once `before` has run.
 */
export function serveForSuite(args: string[] = []): ServeSuite {
  const suite = {} as ServeSuite;
  before(async () => {
    suite.work = await fs.mkdtemp(path.join(os.tmpdir(), 'ferry-cli-'));
    suite.server = await startServeProcess(['--root', path.join(suite.work, 'store'), ...args]);
    suite.address = `127.0.0.1:${suite.server.port}`;
  });
  after(async () => {
    await suite.server.stop();
    await fs.rm(suite.work, { recursive: true, force: true });
  });
  return suite;
}

/**
 * Writes `dir/report-loaded.cjs`, a preload (`NODE_OPTIONS=--require FILE`) that prints at exit
 * `LOADED [...]`: the Node modules loaded and every package required by bare name, and
 * `ESM true|false`: whether the ES module loader ran (the full CLI) or not (a quick path).
 * Returns its path.
 */
export async function writeLoadReporter(dir: string): Promise<string> {
  const hook = path.join(dir, 'report-loaded.cjs');
  await fs.writeFile(
    hook,
    // (module.constructor is CommonJS's Module: require('node:module') would load the ES module loader.)
    `const Module = module.constructor;
const packages = new Set();
const load = Module._load;
Module._load = function (request, ...rest) {
  if (!/^(node:|\\.|\\/)/.test(request)) packages.add(request);
  return load.call(this, request, ...rest);
};
process.on('exit', () => {
  const builtins = process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13));
  require('node:fs').writeSync(2, 'LOADED ' + JSON.stringify([...builtins, ...packages]) + '\\nESM ' + builtins.some((m) => /esm\\/loader/.test(m)) + '\\n');
});
`,
  );
  return hook;
}
