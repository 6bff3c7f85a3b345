/**
 * Time as a dependency: every deadline in ferry (handshake, idle, owed bodies, partial-upload
 * TTLs, raw-ingest silence) reads the time and arms timers through a Clock, so tests can move
 * time forward by hand instead of sleeping. Timers are unref'd: a deadline alone never keeps a
 * process alive.
 */
export interface Clock {
  /** Milliseconds, monotonic within one clock. */
  now(): number;
  /** Calls `callback` once, after `ms`; the returned timer can be cancelled. */
  setTimer(ms: number, callback: () => void): Timer;
}

export interface Timer {
  cancel(): void;
}

/** The largest delay Node's timers take (2^31 − 1 ms, ~24.8 days); longer ones would fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Wall time through Node's timers; delays are clamped to what Node can wait. The time is
 * process.hrtime's, not performance.now()'s: the first use of `performance` loads perf_hooks,
 * ~1.5 ms of a CLI start (`ferry ls`).
 */
export const systemClock: Clock = {
  now: () => Number(process.hrtime.bigint()) / 1e6,
  setTimer(ms, callback) {
    const timer = setTimeout(callback, Math.min(Math.max(0, ms), MAX_TIMER_MS));
    timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
};

/**
 * A deadline that can be pushed back cheaply: `touch()` on every sign of progress records the
 * time; the single armed timer re-arms itself for the remainder when it fires early. This
 * keeps the hot path (one touch per socket read) to one clock read.
 */
export class Deadline {
  private last: number;
  private timer: Timer | undefined;

  constructor(
    private readonly clock: Clock,
    readonly ms: number,
    private readonly onExpire: () => void,
  ) {
    this.last = clock.now();
  }

  /** Starts (or restarts) counting from now. */
  start(): void {
    this.last = this.clock.now();
    if (this.timer === undefined) this.arm(this.ms);
  }

  /** Progress: the countdown begins again from now (no timer is touched). */
  touch(): void {
    this.last = this.clock.now();
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  get running(): boolean {
    return this.timer !== undefined;
  }

  private arm(ms: number): void {
    this.timer = this.clock.setTimer(ms, () => {
      this.timer = undefined;
      const left = this.last + this.ms - this.clock.now();
      if (left > 0) this.arm(left);
      else this.onExpire();
    });
  }
}
