// rsync daemon on 127.0.0.1: --no-detach, use chroot = no, a writable module `up` and a
// read-only module `data` (the benchmark's source files).
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { freePort, startDaemon, waitListening, type Daemon } from '../lib/proc.js';

export interface RsyncPeer {
  port: number;
  daemon: Daemon;
  url: string;
}

export async function startRsyncd(dir: string, upDir: string, dataDir: string): Promise<RsyncPeer> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const conf = path.join(dir, 'rsyncd.conf');
  writeFileSync(
    conf,
    [
      'use chroot = no',
      'uid = root',
      'gid = root',
      'max connections = 0',
      `log file = ${path.join(dir, 'rsyncd.log')}`,
      '',
      '[up]',
      `path = ${upDir}`,
      'read only = no',
      '',
      '[data]',
      `path = ${dataDir}`,
      'read only = yes',
      '',
    ].join('\n'),
  );
  const daemon = startDaemon(
    'rsyncd',
    ['rsync', '--daemon', '--no-detach', '--address', '127.0.0.1', '--port', String(port), '--config', conf],
    path.join(dir, 'rsyncd.out'),
  );
  let alive = true;
  void daemon.exited.then(() => (alive = false));
  try {
    await waitListening(port, 10_000, () => alive);
  } catch (err) {
    await daemon.stop();
    throw new Error(`rsync daemon did not start: ${(err as Error).message}: ${daemon.output().trim().slice(0, 300)}`);
  }
  return { port, daemon, url: `rsync://127.0.0.1:${port}` };
}
