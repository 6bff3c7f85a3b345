import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Deadline } from '../src/clock.js';
import { ManualClock } from './helpers/manual-clock.js';

describe('Deadline', () => {
  it('fires only after ms without a touch, re-arming after progress', () => {
    const clock = new ManualClock();
    let fired = 0;
    const deadline = new Deadline(clock, 1000, () => fired++);
    deadline.start();
    clock.advance(900);
    deadline.touch();
    clock.advance(900);
    assert.equal(fired, 0, 'progress 900 ms ago: not yet');
    clock.advance(100);
    assert.equal(fired, 1);
    assert.equal(deadline.running, false);
  });

  it('stop() cancels, start() counts from now', () => {
    const clock = new ManualClock();
    let fired = 0;
    const deadline = new Deadline(clock, 50, () => fired++);
    deadline.start();
    deadline.stop();
    clock.advance(1000);
    assert.equal(fired, 0);
    deadline.start();
    clock.advance(49);
    assert.equal(fired, 0);
    clock.advance(1);
    assert.equal(fired, 1);
  });
});
