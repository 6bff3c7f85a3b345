import { promises as fs } from 'node:fs';
import path from 'node:path';
import { nodeOs } from '../builtins.js';

/**
 * Trust on first use, like ssh: the first time a TLS server that no CA vouches for is seen,
 * its certificate fingerprint is remembered; later it must match, or the connection is
 * refused loudly. The file has one `HOST:PORT SHA256:<base64>` per line (`#` comments).
 */

/** `$XDG_CONFIG_HOME/ferry/known_hosts`, else `~/.config/ferry/known_hosts`. */
export function defaultKnownHostsPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : path.join(nodeOs().homedir(), '.config');
  return path.join(base, 'ferry', 'known_hosts');
}

/** The key a server is remembered under: `host:port`, `[v6]:port`. */
export function hostKey(host: string, port: number): string {
  return host.includes(':') ? `[${host.toLowerCase()}]:${port}` : `${host.toLowerCase()}:${port}`;
}

export class KnownHosts {
  constructor(readonly file: string = defaultKnownHostsPath()) {}

  /** The remembered fingerprint of `key`, if any (the last line wins). */
  async lookup(key: string): Promise<string | undefined> {
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    let found: string | undefined;
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const [host, fingerprint] = line.split(/\s+/);
      if (host === key && fingerprint !== undefined) found = fingerprint;
    }
    return found;
  }

  /** Remembers `fingerprint` for `key` (appends one line; the folder is private to the user). */
  async remember(key: string, fingerprint: string): Promise<void> {
    await fs.mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    await fs.appendFile(this.file, `${key} ${fingerprint}\n`, { mode: 0o600 });
  }
}
