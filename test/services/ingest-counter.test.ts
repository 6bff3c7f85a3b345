import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { IngestCounter } from '../../src/services/ingest-counter.js';
import { tempDir } from './helpers.js';

describe('IngestCounter', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir();
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('hands out 1, 2, 3… in call order under concurrency, each durably recorded', async () => {
    const file = path.join(dir, 'a', 'next');
    const counter = await IngestCounter.open(file);
    const claims = Array.from({ length: 50 }, () => counter.claim());
    assert.deepEqual(await Promise.all(claims), Array.from({ length: 50 }, (_, i) => i + 1));
    assert.equal(await fs.readFile(file, 'utf8'), '51\n');
  });

  it('continues after reopening and skips numbers that are taken', async () => {
    const file = path.join(dir, 'b');
    const first = await IngestCounter.open(file);
    assert.equal(await first.claim(), 1);
    const second = await IngestCounter.open(file);
    const taken = new Set([2, 3, 5]);
    assert.equal(await second.claim(async (n) => taken.has(n)), 4);
    assert.equal(await second.claim(async (n) => taken.has(n)), 6);
    assert.equal((await IngestCounter.open(file)).peek, 7);
  });

  it('starts from `initial` without a file, and refuses a corrupt file with a clear message', async () => {
    const fresh = await IngestCounter.open(path.join(dir, 'c'), { initial: async () => 10 });
    assert.equal(await fresh.claim(), 10);
    await fs.writeFile(path.join(dir, 'd'), 'garbage');
    await assert.rejects(IngestCounter.open(path.join(dir, 'd')), /counter file .* is corrupt/);
  });
});
