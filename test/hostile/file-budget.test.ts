import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FerryError } from '../../src/errors.js';
import { FileBudget } from '../../src/server/file-budget.js';
import { ManualClock } from '../helpers/manual-clock.js';

/** Lets granted waiters' promises settle. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Acquires `count` slots and records when the grant arrives (the promise is kept for errors). */
function ask(budget: FileBudget, count: number): { granted: () => boolean; release: () => Promise<() => void> } {
  let granted = false;
  const pending = budget.acquire(count).then((release) => {
    granted = true;
    return release;
  });
  pending.catch(() => undefined); // a refusal is looked at by the test that expects it
  return { granted: () => granted, release: () => pending };
}

describe('the open-file budget counts every file a transfer may hold open', () => {
  it('grants slots by weight and never more than the limit at once', async () => {
    const budget = new FileBudget(100, new ManualClock());
    const big = await budget.acquire(64);
    const small = await budget.acquire(30);
    assert.equal(budget.inUse, 94);
    const second = ask(budget, 64);
    await settle();
    assert.equal(second.granted(), false, '94 + 64 would pass the limit of 100');
    small();
    await settle();
    assert.equal(second.granted(), false, 'still 64 + 64');
    big();
    await settle();
    assert.equal(second.granted(), true);
    assert.equal(budget.inUse, 64);
    (await second.release())();
    assert.equal(budget.inUse, 0);
  });

  it('serves waiters in order: a large request is not starved by small ones arriving after it', async () => {
    const budget = new FileBudget(10, new ManualClock());
    const first = await budget.acquire(6);
    const large = ask(budget, 8);
    const smallAfter = ask(budget, 2);
    await settle();
    assert.equal(smallAfter.granted(), false, 'a small request waits behind the large one that came first, although it would fit');
    first();
    await settle();
    assert.equal(large.granted(), true);
    assert.equal(smallAfter.granted(), true, 'both fit once the first is back: 8 + 2');
    assert.equal(budget.inUse, 10);
  });

  it('refuses a waiter with BUSY at its deadline, and the ones it held back move on', async () => {
    const clock = new ManualClock();
    const budget = new FileBudget(10, clock, 1000);
    const holder = await budget.acquire(5);
    const large = ask(budget, 8);
    await settle();
    clock.advance(500);
    const small = ask(budget, 3); // would fit, but waits behind the large one
    await settle();
    assert.equal(small.granted(), false);
    clock.advance(500); // the large one's deadline
    await assert.rejects(large.release(), (error: FerryError) => error.code === 'BUSY');
    await settle();
    assert.equal(small.granted(), true, 'granted as soon as the large request gave up its place');
    assert.equal(budget.inUse, 8);
    holder();
    (await small.release())();
    assert.equal(budget.inUse, 0);
  });

  it('asks for no more than the whole budget, and a release counts once', async () => {
    const budget = new FileBudget(16, new ManualClock());
    const all = await budget.acquire(64);
    assert.equal(budget.inUse, 16, 'a request over the limit takes the whole budget, so it can ever be granted');
    all();
    all();
    assert.equal(budget.inUse, 0);
  });
});
