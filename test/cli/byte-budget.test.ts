import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ByteBudget } from '../../src/cli/byte-budget.js';

/** Lets granted takes run (promise continuations). */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Issue 12: `get -r` holds at most a budget of batch downloads per connection (they were
 * bounded only by 32 lanes × 256 KiB: 8 MiB a connection, 135 MB of client RSS on 10,000 ×
 * 32 KiB files).
 */
describe('the byte budget for downloads in flight', () => {
  it('holds at most its limit, and lets waiters in as bytes are released, in order', async () => {
    const budget = new ByteBudget(1000);
    const first = await budget.take(600);
    const second = await budget.take(400);
    const order: string[] = [];
    const third = budget.take(500).then((release) => (order.push('third'), release));
    const fourth = budget.take(100).then((release) => (order.push('fourth'), release));
    await settle();
    assert.deepEqual(order, [], 'nothing fits while 1,000 bytes are held');
    assert.equal(budget.inFlight, 1000);
    first();
    first(); // a second release gives nothing back twice
    await settle();
    assert.deepEqual(order, ['third', 'fourth'], 'both fit once 600 bytes are back');
    assert.equal(budget.inFlight, 1000);
    second();
    (await third)();
    (await fourth)();
    assert.equal(budget.inFlight, 0);
  });

  it('lets a request larger than the whole budget go alone', async () => {
    const budget = new ByteBudget(1000);
    const small = await budget.take(10);
    const large = budget.take(5000);
    await settle();
    assert.equal(budget.inFlight, 10, 'it waits while anything else is held');
    small();
    const releaseLarge = await large;
    assert.equal(budget.inFlight, 5000, 'alone, it goes');
    releaseLarge();
    assert.equal(budget.inFlight, 0);
  });
});
