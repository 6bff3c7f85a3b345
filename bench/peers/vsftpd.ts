// vsftpd standalone on 127.0.0.1 (listen=YES, background=NO), a throwaway local user with a
// password, writes enabled, passive ports in a high range with pasv_address=127.0.0.1,
// seccomp_sandbox=NO. Used by curl and lftp.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { freePort, isListening, mustShell, onCleanup, runShell, startDaemon, waitListening, type Daemon } from '../lib/proc.js';
import { spawnSync } from 'node:child_process';

export const FTP_USER = 'ferrybench';
const MARK = 'ferry bench throwaway user';

export interface FtpPeer {
  port: number;
  daemon: Daemon;
  user: string;
  pass: string;
}

async function pickPasvRange(width: number): Promise<[number, number]> {
  // below Linux's ephemeral range (32768+), so clients' own ports do not collide
  for (let base = 21000; base < 32000; base += width) {
    let busy = false;
    for (const p of [base, base + Math.floor(width / 2), base + width - 1]) if (await isListening(p)) busy = true;
    if (!busy) return [base, base + width - 1];
  }
  return [21000, 21000 + width - 1];
}

/** `root` is the FTP user's home (local_root); paths in URLs are relative to it. */
export async function startVsftpd(dir: string, root: string): Promise<FtpPeer> {
  mkdirSync(dir, { recursive: true });
  const empty = path.join(dir, 'empty');
  mkdirSync(empty, { recursive: true });
  chmodSync(empty, 0o755);
  const pass = randomBytes(12).toString('hex');
  const exists = spawnSync('id', ['-u', FTP_USER]).status === 0;
  if (!exists) {
    await mustShell(`useradd -M -d ${root} -s /bin/bash -c '${MARK}' ${FTP_USER}`);
  } else {
    await mustShell(`usermod -d ${root} ${FTP_USER}`);
  }
  onCleanup(() => {
    // remove the throwaway user again (only ours: marked in its GECOS field)
    const gecos = spawnSync('getent', ['passwd', FTP_USER], { encoding: 'utf8' }).stdout ?? '';
    if (gecos.includes(MARK)) spawnSync('userdel', [FTP_USER]);
  });
  await mustShell(`echo '${FTP_USER}:${pass}' | chpasswd`);
  const port = await freePort();
  const [pmin, pmax] = await pickPasvRange(1000);
  const conf = path.join(dir, 'vsftpd.conf');
  writeFileSync(
    conf,
    [
      'listen=YES',
      'listen_ipv6=NO',
      'listen_address=127.0.0.1',
      `listen_port=${port}`,
      'background=NO',
      'anonymous_enable=NO',
      'local_enable=YES',
      'write_enable=YES',
      'local_umask=022',
      `local_root=${root}`,
      'pam_service_name=vsftpd',
      'pasv_enable=YES',
      `pasv_min_port=${pmin}`,
      `pasv_max_port=${pmax}`,
      'pasv_address=127.0.0.1',
      'seccomp_sandbox=NO',
      `secure_chroot_dir=${empty}`,
      'max_clients=0',
      'max_per_ip=0',
      'xferlog_enable=NO',
      'dirmessage_enable=NO',
      'use_localtime=NO',
      'ssl_enable=NO',
      '',
    ].join('\n'),
  );
  chmodSync(conf, 0o600);
  const daemon = startDaemon('vsftpd', ['/usr/sbin/vsftpd', conf], path.join(dir, 'vsftpd.log'));
  let alive = true;
  void daemon.exited.then(() => (alive = false));
  try {
    await waitListening(port, 10_000, () => alive);
  } catch (err) {
    await daemon.stop();
    throw new Error(`vsftpd did not start: ${(err as Error).message}: ${daemon.output().trim().slice(0, 300)}`);
  }
  // a login check, so a broken setup is one clear error instead of failed rows
  const r = await runShell(`curl -sS --fail --max-time 10 -u ${FTP_USER}:${pass} --list-only ftp://127.0.0.1:${port}/`, { timeoutMs: 15_000, timeV: false });
  if (r.code !== 0) {
    await daemon.stop();
    throw new Error(`vsftpd login check failed: ${r.stderr.trim().slice(0, 300)}`);
  }
  return { port, daemon, user: FTP_USER, pass };
}
