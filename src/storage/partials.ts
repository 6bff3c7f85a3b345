import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { isCode } from './safe-path.js';

/**
 * Interrupted uploads kept for resuming, in `.ferry/partial/`. A partial is keyed by the
 * name and the declared size it was started for, so a different file of the same name never
 * continues it. Claiming a partial renames it away first: two resumes can never share one.
 * Partials older than the TTL are removed.
 */
export class PartialStore {
  constructor(
    private readonly dir: string,
    private readonly tmpDir: string,
    private readonly ttlMs: number,
  ) {}

  /** Names of the partials on disk, so the common case (none) costs no system call. */
  private readonly held = new Set<string>();

  private keyFor(name: string, size: number): string {
    return createHash('sha256').update(`${size}\0${name}`).digest('hex');
  }

  private fileFor(name: string, size: number): string {
    return path.join(this.dir, this.keyFor(name, size));
  }

  async init(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    await this.sweep();
    for (const entry of await fs.readdir(this.dir)) this.held.add(entry);
  }

  /** Bytes held for (name, size), or 0. */
  async sizeOf(name: string, size: number): Promise<number> {
    if (!this.held.has(this.keyFor(name, size))) return 0;
    try {
      const stats = await fs.stat(this.fileFor(name, size));
      if (Date.now() - stats.mtimeMs > this.ttlMs || stats.size > size) return 0;
      return stats.size;
    } catch (error) {
      if (isCode(error, 'ENOENT')) return 0;
      throw error;
    }
  }

  /** Keeps an interrupted upload's temporary for a later resume. */
  async keep(tempPath: string, name: string, size: number): Promise<void> {
    await fs.rename(tempPath, this.fileFor(name, size));
    this.held.add(this.keyFor(name, size));
  }

  /**
   * Moves the partial for (name, size) into the temporaries under a fresh name and returns
   * it, or undefined if there is none (or another upload claimed it first).
   */
  async claim(name: string, size: number): Promise<string | undefined> {
    const key = this.keyFor(name, size);
    if (!this.held.has(key)) return undefined;
    const claimed = path.join(this.tmpDir, `${randomBytes(12).toString('hex')}.part`);
    try {
      await fs.rename(path.join(this.dir, key), claimed);
      this.held.delete(key);
      return claimed;
    } catch (error) {
      if (isCode(error, 'ENOENT')) {
        this.held.delete(key);
        return undefined;
      }
      throw error;
    }
  }

  async discard(name: string, size: number): Promise<void> {
    const key = this.keyFor(name, size);
    if (!this.held.delete(key)) return;
    await fs.rm(path.join(this.dir, key), { force: true });
  }

  async sweep(): Promise<void> {
    const now = Date.now();
    for (const entry of await fs.readdir(this.dir)) {
      const file = path.join(this.dir, entry);
      try {
        if (now - (await fs.stat(file)).mtimeMs > this.ttlMs) {
          await fs.rm(file, { force: true });
          this.held.delete(entry);
        }
      } catch {
        // raced with a claim: nothing to do
      }
    }
  }
}
