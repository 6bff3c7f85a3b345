// Installs the peer tools from Debian when missing (apt-get; we are root on the bench machine).
import { existsSync } from 'node:fs';
import { firstLines, runShell } from '../lib/proc.js';

/** binary → Debian package */
const TOOLS: Array<[string, string]> = [
  ['/usr/bin/nc', 'netcat-openbsd'],
  ['/usr/sbin/sshd', 'openssh-server'],
  ['/usr/bin/scp', 'openssh-client'],
  ['/usr/bin/sftp', 'openssh-client'],
  ['/usr/bin/ssh-keygen', 'openssh-client'],
  ['/usr/bin/rsync', 'rsync'],
  ['/usr/sbin/vsftpd', 'vsftpd'],
  ['/usr/bin/curl', 'curl'],
  ['/usr/bin/lftp', 'lftp'],
  ['/usr/bin/time', 'time'],
  ['/usr/bin/hyperfine', 'hyperfine'],
];

export function has(bin: string): boolean {
  return existsSync(bin);
}

/** Installs what is missing; returns notes about anything that could not be installed. */
export async function ensureTools(log: (m: string) => void): Promise<string[]> {
  const missing = [...new Set(TOOLS.filter(([bin]) => !existsSync(bin)).map(([, pkg]) => pkg))];
  if (missing.length === 0) return [];
  const notes: string[] = [];
  if (process.getuid?.() !== 0) {
    return [`missing tools not installed (not root): ${missing.join(', ')}`];
  }
  log(`installing from Debian: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const up = await runShell('apt-get update -qq', { timeoutMs: 300_000, env, timeV: false });
  if (up.code !== 0) notes.push(`apt-get update failed: ${firstLines(up.stderr)}`);
  // one by one, so one unavailable package (hyperfine is optional) does not block the rest
  for (const pkg of missing) {
    const r = await runShell(`apt-get install -y -qq --no-install-recommends ${pkg}`, { timeoutMs: 600_000, env, timeV: false });
    if (r.code !== 0) notes.push(`apt-get install ${pkg} failed: ${firstLines(r.stderr)}`);
  }
  return notes;
}
