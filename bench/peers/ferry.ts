// The ferry server under test: `ferry serve --host 127.0.0.1 --port 0 --root DIR [--no-fsync]
// [--tls] [extra flags]`, ready when it prints `listening on 127.0.0.1:PORT`. With --tls it keeps
// a self-signed certificate under DIR/.ferry/tls and logs its fingerprint, which clients pin with
// `--fingerprint` (no known_hosts file is written). Peak RSS from /proc/PID/status VmHWM.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { FERRY_CLI } from '../lib/context.js';
import { firstLines, procStatusKb, sh, startDaemon, type Daemon } from '../lib/proc.js';

export interface FerryServer {
  port: number;
  addr: string;
  root: string;
  daemon: Daemon;
  noFsync: boolean;
  /** `SHA256:…` of the server's certificate when it serves TLS. */
  fingerprint?: string;
  /** Flags a client needs to reach this server (`--fingerprint SHA256:…` with TLS). */
  clientArgs: string[];
  /** The serve command as run. */
  command: string;
  peakRssKb(): Promise<number | null>;
  stop(): Promise<{ peakRssKb: number | null; exitCode: number | null }>;
}

export interface FerryServerOptions {
  noFsync: boolean;
  tls?: boolean;
  /** More `ferry serve` flags (bench --ferry-server-args). */
  extraArgs?: string[];
}

export async function startFerry(root: string, logDir: string, opts: FerryServerOptions, label: string): Promise<FerryServer> {
  const { noFsync } = opts;
  mkdirSync(root, { recursive: true });
  mkdirSync(logDir, { recursive: true });
  const argv = [process.execPath, FERRY_CLI, 'serve', '--host', '127.0.0.1', '--port', '0', '--root', root];
  if (noFsync) argv.push('--no-fsync');
  if (opts.tls) argv.push('--tls');
  argv.push(...(opts.extraArgs ?? []));
  let resolvePort: (p: number) => void = () => {};
  const portP = new Promise<number>((r) => (resolvePort = r));
  let fingerprint: string | undefined;
  const daemon = startDaemon(`ferry-${label}`, argv, path.join(logDir, `ferry-${label}.log`), {
    onLine: (line) => {
      // the fingerprint line comes before "listening on"
      const f = /fingerprint (SHA256:[A-Za-z0-9+/]{43}=?)/.exec(line);
      if (f && f[1]) fingerprint = f[1];
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
      if (m && m[1]) resolvePort(Number(m[1]));
    },
  });
  const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000).unref());
  const res = await Promise.race([portP, daemon.exited.then(() => 'exited' as const), timeout]);
  if (typeof res !== 'number') {
    await daemon.stop();
    const out = firstLines(daemon.output(), 3) || '(no output)';
    throw new Error(`${argv.slice(2).join(' ')} ${res === 'timeout' ? 'printed no "listening on" line in 20 s' : 'exited'}: ${out}`);
  }
  const port = res;
  if (opts.tls && !fingerprint) {
    await daemon.stop();
    throw new Error(`ferry serve --tls logged no "fingerprint SHA256:…" line before listening: ${firstLines(daemon.output(), 3)}`);
  }
  return {
    port,
    addr: `127.0.0.1:${port}`,
    root,
    daemon,
    noFsync,
    ...(fingerprint ? { fingerprint } : {}),
    clientArgs: fingerprint ? ['--fingerprint', fingerprint] : [],
    command: argv.slice(2).map(sh).join(' ').replace('--port 0', `--port 0 (→ ${port})`),
    peakRssKb: () => procStatusKb(daemon.pid, 'VmHWM'),
    async stop() {
      const peak = await procStatusKb(daemon.pid, 'VmHWM');
      await daemon.stop(8000);
      const ex = await daemon.exited;
      return { peakRssKb: peak, exitCode: ex.code };
    },
  };
}
