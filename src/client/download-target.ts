import { constants, promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import { FerryError } from '../errors.js';
import { DownloadLock, linkUnsupported } from './download-lock.js';
import { errorText } from './requests.js';

/**
 * The local side of a download to a path: the lock (download-lock.ts), the open
 * `<path>.ferry-part`, and putting the verified file in place. The file that ends up at the
 * path is exactly the one the call reports, or the call fails:
 *
 * - a second download to the same path (same process or another) fails at once while the
 *   first holds the lock;
 * - a path that did not exist is created with link(2), which never replaces a file another
 *   program wrote there meanwhile; a path that existed is replaced only if it is still the
 *   file seen at the start (same inode, size and mtime). Otherwise the call fails and the
 *   verified download stays in `<path>.ferry-part`, so running it again replaces the file.
 */
export class DownloadTarget {
  private closed = false;
  private placed = false;
  private keepPartial = false;

  private constructor(
    readonly target: string,
    readonly partial: string,
    readonly handle: fs.FileHandle,
    private readonly lock: DownloadLock,
    private readonly before: Stats | undefined,
  ) {}

  static async claim(destination: string): Promise<DownloadTarget> {
    const target = path.resolve(destination);
    const partial = `${target}.ferry-part`;
    let lock: DownloadLock;
    try {
      lock = await DownloadLock.acquire(`${target}.ferry-lock`, target);
    } catch (error) {
      throw localError(error, target);
    }
    try {
      const before = await lstatIfAny(target);
      const handle = await fs.open(partial, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o644);
      return new DownloadTarget(target, partial, handle, lock, before);
    } catch (error) {
      await lock.release();
      throw localError(error, target);
    }
  }

  /** Puts the verified part in place (after the lock is checked to be still ours). */
  async place(): Promise<void> {
    await this.lock.verify(this.target);
    this.closed = true;
    await this.handle.close();
    try {
      if (this.before === undefined) await this.createTarget();
      else await this.replaceTarget(this.before);
    } catch (error) {
      throw localError(error, this.target);
    }
    this.placed = true;
  }

  private async createTarget(): Promise<void> {
    try {
      await fs.link(this.partial, this.target);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') throw this.changedMeanwhile('appeared');
      if (!linkUnsupported(code)) throw error;
      // No hard links here: check, then rename (a narrow window instead of none).
      if ((await lstatIfAny(this.target)) !== undefined) throw this.changedMeanwhile('appeared');
      await fs.rename(this.partial, this.target);
      return;
    }
    await fs.rm(this.partial, { force: true });
  }

  private async replaceTarget(before: Stats): Promise<void> {
    const now = await lstatIfAny(this.target);
    if (now !== undefined && !sameFile(before, now)) throw this.changedMeanwhile('changed');
    await fs.rename(this.partial, this.target);
  }

  private changedMeanwhile(how: 'appeared' | 'changed'): FerryError {
    this.keepPartial = true;
    return new FerryError(
      'LOCAL_IO',
      `${this.target} ${how} during the download (written by another program): not replaced; the verified download is kept in ${this.partial}: run the command again to replace it`,
    );
  }

  /** Closes the part (kept for a resume if `keepPartial`, else removed unless placed) and drops the lock. */
  async release(keepPartial: boolean): Promise<void> {
    try {
      if (!this.closed) {
        this.closed = true;
        await this.handle.close().catch(() => undefined);
      }
      if (!this.placed && !keepPartial && !this.keepPartial) await fs.rm(this.partial, { force: true });
    } finally {
      await this.lock.release().catch(() => undefined);
    }
  }
}

async function lstatIfAny(file: string): Promise<Stats | undefined> {
  try {
    return await fs.lstat(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function sameFile(a: Stats, b: Stats): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

/** A file-system error on the local side as one line naming the path. */
function localError(error: unknown, target: string): FerryError {
  if (error instanceof FerryError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  const folder = path.dirname(target);
  if (code === 'ENOENT') return new FerryError('LOCAL_IO', `no such folder: ${folder}`, { cause: error });
  if (code === 'EACCES' || code === 'EPERM') return new FerryError('LOCAL_IO', `no permission to write in ${folder}`, { cause: error });
  if (code === 'EISDIR') return new FerryError('LOCAL_IO', `${target} is a folder`, { cause: error });
  if (code === 'ELOOP') return new FerryError('LOCAL_IO', `${target}.ferry-part is a symbolic link: refusing to write through it`, { cause: error });
  return new FerryError('LOCAL_IO', `cannot write ${target}: ${errorText(error)}`, { cause: error });
}
