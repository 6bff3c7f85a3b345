// The ferry server under test: `ferry serve --host 127.0.0.1 --port 0 --root DIR [--no-fsync]`,
// ready when it prints `listening on 127.0.0.1:PORT`. Peak RSS from /proc/PID/status VmHWM.
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
  /** The serve command as run. */
  command: string;
  peakRssKb(): Promise<number | null>;
  stop(): Promise<{ peakRssKb: number | null; exitCode: number | null }>;
}

export async function startFerry(root: string, logDir: string, noFsync: boolean, label: string): Promise<FerryServer> {
  mkdirSync(root, { recursive: true });
  mkdirSync(logDir, { recursive: true });
  const argv = [process.execPath, FERRY_CLI, 'serve', '--host', '127.0.0.1', '--port', '0', '--root', root];
  if (noFsync) argv.push('--no-fsync');
  let resolvePort: (p: number) => void = () => {};
  const portP = new Promise<number>((r) => (resolvePort = r));
  const daemon = startDaemon(`ferry-${label}`, argv, path.join(logDir, `ferry-${label}.log`), {
    onLine: (line) => {
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
      if (m && m[1]) resolvePort(Number(m[1]));
    },
  });
  const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000).unref());
  const res = await Promise.race([portP, daemon.exited.then(() => 'exited' as const), timeout]);
  if (typeof res !== 'number') {
    await daemon.stop();
    const out = firstLines(daemon.output(), 3) || '(no output)';
    throw new Error(`ferry serve${noFsync ? ' --no-fsync' : ''} ${res === 'timeout' ? 'printed no "listening on" line in 20 s' : 'exited'}: ${out}`);
  }
  const port = res;
  return {
    port,
    addr: `127.0.0.1:${port}`,
    root,
    daemon,
    noFsync,
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
