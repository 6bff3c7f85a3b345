/**
 * A restartable inactivity timer: `touch()` on every sign of life, `stop()` while the silence
 * is ours (e.g. paused for the disk), `start()` to count again.
 */
export class IdleTimer {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly ms: number,
    private readonly onIdle: () => void,
  ) {}

  start(): void {
    this.stop();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.onIdle();
    }, this.ms);
  }

  /** Restarts the countdown if it is running (cheap: no new timer). */
  touch(): void {
    this.timer?.refresh();
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
