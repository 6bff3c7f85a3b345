import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { FerryError } from '../errors.js';

export interface CounterOptions {
  /** fsync the counter file and its folder before a number is handed out (default true). */
  fsync?: boolean;
  /** First number to use when there is no counter file yet (e.g. above the files already present). */
  initial?: () => Promise<number>;
}

/**
 * A durable, strictly increasing sequence of numbers 1, 2, 3… that survives restarts.
 *
 * The file holds the next number to hand out. A number is returned only once the file says
 * it is taken, so a crash can never make a later run hand it out again; numbers whose use
 * failed are simply skipped. Claims are served in call order, and concurrent claims share one
 * write (group commit) so a burst of connections costs one fsync, not one each.
 * Only one process may use a counter file at a time.
 */
export class IngestCounter {
  private next: number;
  private persisted: number;
  private claims: Promise<unknown> = Promise.resolve();
  private writing: Promise<void> | undefined;

  private constructor(
    private readonly file: string,
    start: number,
    private readonly fsync: boolean,
  ) {
    this.next = start;
    this.persisted = start;
  }

  static async open(file: string, options: CounterOptions = {}): Promise<IngestCounter> {
    let start: number;
    let text: string | undefined;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (text === undefined) {
      start = Math.max(1, (await options.initial?.()) ?? 1);
    } else {
      const value = Number(text.trim());
      if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < 1) {
        throw new FerryError('LOCAL_IO', `counter file ${file} is corrupt (${JSON.stringify(text.slice(0, 40))}): remove it to renumber from the files present`);
      }
      start = value;
    }
    const fsync = options.fsync ?? true;
    const folder = path.dirname(file);
    await fs.mkdir(folder, { recursive: true });
    // The folder may be new (the store makes `.ferry/` without syncing the root): name it
    // durably, or a power cut could take the counter file with it and numbers would be reused.
    if (fsync) await syncFolder(path.dirname(folder));
    return new IngestCounter(file, start, fsync);
  }

  /** The number the next claim will start from (for logs and tests). */
  get peek(): number {
    return this.next;
  }

  /**
   * Hands out the next number for which `isTaken` is false, once it is durably recorded.
   * Numbers are assigned in call order, so call this synchronously where order matters.
   */
  claim(isTaken: (n: number) => Promise<boolean> = async () => false): Promise<number> {
    const assigned = this.claims.then(async () => {
      let n = this.next;
      while (await isTaken(n)) n++;
      this.next = n + 1;
      return n;
    });
    this.claims = assigned.catch(() => undefined);
    return assigned.then(async (n) => {
      await this.persistAtLeast(n + 1);
      return n;
    });
  }

  /** Waits until the file records a value ≥ `target`, writing it if no write in flight will. */
  private async persistAtLeast(target: number): Promise<void> {
    while (this.persisted < target) {
      if (this.writing) {
        await this.writing;
        continue;
      }
      const value = this.next;
      this.writing = this.write(value)
        .then(() => {
          this.persisted = Math.max(this.persisted, value);
        })
        .finally(() => {
          this.writing = undefined;
        });
      await this.writing;
    }
  }

  /** Replaces the file atomically: a crash leaves the old value or the new one. */
  private async write(value: number): Promise<void> {
    const temp = `${this.file}.tmp`;
    const handle = await fs.open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o644);
    try {
      await handle.writeFile(`${value}\n`);
      if (this.fsync) await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temp, this.file);
    if (this.fsync) await syncFolder(path.dirname(this.file));
  }
}

async function syncFolder(dir: string): Promise<void> {
  const handle = await fs.open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
