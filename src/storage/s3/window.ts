/**
 * At most `size` tasks at once, the others waiting in order: bounds the requests one store
 * makes for work many connections ask at the same time (each request holds its SDK objects
 * and, for a read, its bytes until answered).
 */
export class Window {
  private running = 0;
  private readonly queue: (() => void)[] = [];

  constructor(private readonly size: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.size) await new Promise<void>((resolve) => this.queue.push(resolve));
    else this.running++;
    try {
      return await task();
    } finally {
      const next = this.queue.shift();
      if (next) next(); // the turn passes on: running stays the same
      else this.running--;
    }
  }
}
