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

  /**
   * Runs `task` holding the locks of all `names`, taken one after another in sorted order —
   * the order every holder of several locks uses (moves too), so two of them never wait on
   * each other.
   */
  async withAll<T>(names: readonly string[], task: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(names)].sort();
    const take = (i: number): Promise<T> => (i === sorted.length ? task() : this.with(sorted[i]!, () => take(i + 1)));
    return take(0);
  }
}
