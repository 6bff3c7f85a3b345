import type { Clock, Timer } from '../../src/clock.js';

/** A clock that moves only when the test says so: deadlines are tested without sleeping. */
export class ManualClock implements Clock {
  private time = 0;
  private readonly timers = new Set<{ at: number; callback: () => void }>();

  now(): number {
    return this.time;
  }

  setTimer(ms: number, callback: () => void): Timer {
    const entry = { at: this.time + Math.max(0, ms), callback };
    this.timers.add(entry);
    return { cancel: () => this.timers.delete(entry) };
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const target = this.time + ms;
    for (;;) {
      let next: { at: number; callback: () => void } | undefined;
      for (const timer of this.timers) if (timer.at <= target && (!next || timer.at < next.at)) next = timer;
      if (!next) break;
      this.timers.delete(next);
      this.time = next.at;
      next.callback();
    }
    this.time = target;
  }
}
