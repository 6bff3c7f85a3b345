/** Per-name locks: a check-then-rename (commit) or check-then-unlink is atomic within this process. */
export class NameLocks {
  private readonly locks = new Map<string, Promise<void>>();

  async with<T>(name: string, task: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(name) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => (release = resolve));
    const chained = previous.then(() => current);
    this.locks.set(name, chained);
    await previous;
    try {
      return await task();
    } finally {
      release();
      if (this.locks.get(name) === chained) this.locks.delete(name);
    }
  }
}
