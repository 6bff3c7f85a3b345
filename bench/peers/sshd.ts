// A private sshd on 127.0.0.1: own config and ed25519 host key, key-only root login with a
// throwaway key, UsePAM no, StrictModes no, internal-sftp. Used by scp and sftp.
import { mkdirSync, writeFileSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import { freePort, mustShell, startDaemon, waitListening, type Daemon } from '../lib/proc.js';

export interface SshPeer {
  port: number;
  daemon: Daemon;
  /** Options shared by scp and sftp (both take -P for the port). */
  opts: string;
  target: string;
}

export async function startSshd(dir: string): Promise<SshPeer> {
  mkdirSync(dir, { recursive: true });
  // sshd's privilege separation directory
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const hostKey = path.join(dir, 'host_ed25519');
  const userKey = path.join(dir, 'id_ed25519');
  await mustShell(`ssh-keygen -q -t ed25519 -N '' -f ${hostKey}`);
  await mustShell(`ssh-keygen -q -t ed25519 -N '' -f ${userKey}`);
  copyFileSync(`${userKey}.pub`, path.join(dir, 'authorized_keys'));
  const port = await freePort();
  const conf = path.join(dir, 'sshd_config');
  writeFileSync(
    conf,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      'PidFile none',
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'Subsystem sftp internal-sftp',
      'MaxStartups 200',
      'MaxSessions 200',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  const daemon = startDaemon('sshd', ['/usr/sbin/sshd', '-D', '-e', '-f', conf], path.join(dir, 'sshd.log'));
  let alive = true;
  void daemon.exited.then(() => (alive = false));
  try {
    await waitListening(port, 10_000, () => alive);
  } catch (err) {
    await daemon.stop();
    throw new Error(`sshd did not start: ${(err as Error).message}: ${daemon.output().trim().slice(0, 300)}`);
  }
  const opts = [
    '-F /dev/null',
    `-P ${port}`,
    `-i ${userKey}`,
    '-o IdentitiesOnly=yes',
    '-o StrictHostKeyChecking=no',
    '-o UserKnownHostsFile=/dev/null',
    '-o BatchMode=yes',
    '-o LogLevel=ERROR',
  ].join(' ');
  return { port, daemon, opts, target: 'root@127.0.0.1' };
}
