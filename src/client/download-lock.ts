import { promises as fs } from 'node:fs';
import os from 'node:os';
import { FerryError } from '../errors.js';

/** A lock whose holder left no parseable text is taken for stale after this long (ms, file age). */
const UNREADABLE_LOCK_STALE_MS = 10_000;

/**
 * An exclusive claim on one download target, across processes and within one: the file
 * `<target>.ferry-lock` holding "pid host nonce". It is created complete and atomically
 * (written beside it, then hard-linked into place, which fails if the name exists), so a
 * reader never sees it half-written. A lock whose process is gone (same host, pid dead) is
 * stale and broken; any other is a download in progress and the claim fails at once.
 */
export class DownloadLock {
  private constructor(
    readonly file: string,
    private readonly token: string,
  ) {}

  static async acquire(file: string, target: string): Promise<DownloadLock> {
    const token = `${process.pid} ${os.hostname()} ${uniqueSuffix()}\n`;
    for (let attempt = 0; attempt < 3; attempt++) {
      if (await createExclusive(file, token)) return new DownloadLock(file, token);
      const holder = await readHolder(file);
      if (holder === undefined) continue; // released meanwhile: try again
      if (!holder.stale) throw busy(target, file, holder.pid);
      await breakStale(file, holder.text);
    }
    throw busy(target, file, undefined);
  }

  /** Throws unless the lock is still this holder's (checked before the file is put in place). */
  async verify(target: string): Promise<void> {
    const text = await fs.readFile(this.file, 'utf8').catch(() => undefined);
    if (text !== this.token) {
      throw new FerryError('LOCAL_IO', `lost the lock ${this.file} during the download: another download to ${target} took over; nothing was replaced`);
    }
  }

  /** Removes the lock if it is still this holder's. */
  async release(): Promise<void> {
    const text = await fs.readFile(this.file, 'utf8').catch(() => undefined);
    if (text === this.token) await fs.rm(this.file, { force: true });
  }
}

function busy(target: string, file: string, pid: number | undefined): FerryError {
  const who = pid === process.pid ? 'in this process' : pid === undefined ? 'in another process' : `by process ${pid}`;
  return new FerryError('LOCAL_IO', `another download to ${target} is in progress (${who}); if there is none, remove ${file}`);
}

/** Creates `file` holding `text`, atomically; false if it exists. */
async function createExclusive(file: string, text: string): Promise<boolean> {
  const draft = `${file}.${process.pid}.${uniqueSuffix()}`;
  await fs.writeFile(draft, text, { flag: 'wx', mode: 0o644 });
  try {
    await fs.link(draft, file);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (!linkUnsupported(code)) throw error;
  } finally {
    await fs.rm(draft, { force: true });
  }
  // No hard links on this file system: O_EXCL, then the text (a reader may see it empty briefly).
  try {
    await fs.writeFile(file, text, { flag: 'wx', mode: 0o644 });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

export function linkUnsupported(code: string | undefined): boolean {
  return code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS' || code === 'EXDEV' || code === 'EMLINK';
}

/** The lock's holder: its pid, and whether it is stale. Undefined if the lock is gone. */
async function readHolder(file: string): Promise<{ pid: number | undefined; text: string; stale: boolean } | undefined> {
  let text: string;
  let ageMs: number;
  try {
    text = await fs.readFile(file, 'utf8');
    ageMs = Date.now() - (await fs.stat(file)).mtimeMs;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const match = /^(\d+) (\S+) \S+\n$/.exec(text);
  if (!match) return { pid: undefined, text, stale: ageMs > UNREADABLE_LOCK_STALE_MS };
  const pid = Number(match[1]);
  // A pid on another host cannot be checked: only the user can tell that lock is stale.
  return { pid, text, stale: match[2] === os.hostname() && !processAlive(pid) };
}

function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // alive, owned by another user
  }
}

/**
 * Removes a stale lock without removing a fresh one taken meanwhile: the lock is renamed
 * aside (only one breaker can move a given file), and put back if what moved is not the
 * stale text this process read.
 */
async function breakStale(file: string, staleText: string): Promise<void> {
  const aside = `${file}.stale-${process.pid}-${uniqueSuffix()}`;
  try {
    await fs.rename(file, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return; // someone else broke it
    throw error;
  }
  try {
    const moved = await fs.readFile(aside, 'utf8').catch(() => undefined);
    if (moved !== staleText) await fs.link(aside, file).catch(() => undefined); // a live lock: restore it
  } finally {
    await fs.rm(aside, { force: true });
  }
}

/**
 * Unique enough to tell this process's lock and temporaries from another's (pid, time, 48
 * random bits); not a secret. Math.random instead of node:crypto: loading that costs every
 * `ferry get` a few ms of start-up.
 */
function uniqueSuffix(): string {
  return `${Date.now().toString(36)}${Math.floor(Math.random() * 2 ** 48).toString(36)}`;
}
