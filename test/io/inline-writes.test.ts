import assert from 'node:assert/strict';
import { fstatSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createHasher } from '../../src/io/digest.js';
import { InlineDigester } from '../../src/io/digester.js';
import { FileSink } from '../../src/io/file-sink.js';
import { InlineWriteGate } from '../../src/io/inline-writes.js';
import { randomData, sha256, tempDir } from '../helpers/fixtures.js';
import { ManualClock } from '../helpers/manual-clock.js';

const KiB = 1024;

describe('InlineWriteGate (issue 11: writes on the event loop while they are fast)', () => {
  it('stays open after fast writes', () => {
    const clock = new ManualClock();
    const gate = new InlineWriteGate(clock, 20, 5000);
    for (let i = 0; i < 100; i++) gate.run(() => clock.advance(19));
    assert.equal(gate.open, true);
  });

  it('one slow write sends writes to the pool for a while, then inline again', () => {
    const clock = new ManualClock();
    const gate = new InlineWriteGate(clock, 20, 5000);
    gate.run(() => clock.advance(25));
    assert.equal(gate.open, false);
    clock.advance(4999);
    assert.equal(gate.open, false);
    clock.advance(1);
    assert.equal(gate.open, true);
  });

  it('a write that throws is timed too, and its error passes through', () => {
    const clock = new ManualClock();
    const gate = new InlineWriteGate(clock, 20, 5000);
    const failure = new Error('EIO');
    assert.throws(
      () =>
        gate.run(() => {
          clock.advance(30);
          throw failure;
        }),
      (error) => error === failure,
    );
    assert.equal(gate.open, false);
  });
});

describe('FileSink inline writes', () => {
  let dir: string;
  let n = 0;
  const file = (): string => path.join(dir, `f${n++}`);
  before(async () => {
    dir = await tempDir();
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });
  const digester = (): InlineDigester => new InlineDigester(createHasher('sha256'));

  it('with the gate open, a chunk is written on the event loop once a chunk not adjoining it comes, or the turn ends', async () => {
    const handle = await fs.open(file(), 'w');
    const sink = new FileSink(handle, 0, digester(), { inlineWrites: new InlineWriteGate(new ManualClock()) });
    const first = randomData(300 * KiB);
    const second = randomData(100 * KiB);
    let released = 0;
    assert.equal(sink.write(first, () => released++), true);
    assert.equal(released, 0, 'held: the next chunk might adjoin it');
    assert.equal(sink.write(second, () => released++), true);
    assert.equal(fstatSync(handle.fd).size, first.length, 'written before write returned');
    assert.equal(released, 1);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(released, 2, 'a held chunk is written when the turn of the event loop ends');
    assert.equal(fstatSync(handle.fd).size, first.length + second.length);
    assert.equal((await sink.finish()).digest.toString('hex'), sha256(Buffer.concat([first, second])));
    await handle.close();
  });

  it('with inlineWrites false, the chunk is queued for the pool and held until written', async () => {
    const handle = await fs.open(file(), 'w');
    const sink = new FileSink(handle, 0, digester(), { inlineWrites: false });
    const data = randomData(300 * KiB);
    let released = 0;
    sink.write(data, () => released++);
    assert.equal(released, 0);
    assert.equal((await sink.finish()).size, data.length);
    assert.equal(released, 1);
    assert.equal(sha256(await fs.readFile(path.join(dir, `f${n - 1}`))), sha256(data));
    await handle.close();
  });

  it('keeps the byte order when the gate opens while pool writes are still queued', async () => {
    const clock = new ManualClock();
    const gate = new InlineWriteGate(clock, 20, 5000);
    gate.run(() => clock.advance(50)); // closed: the next chunks go to the pool
    const name = file();
    const handle = await fs.open(name, 'w');
    const sink = new FileSink(handle, 0, digester(), { inlineWrites: gate });
    const data = randomData(1024 * KiB);
    // Copies: chunks that adjoin in memory would be joined into one write.
    const part = (start: number, end?: number): Buffer => Buffer.from(data.subarray(start, end));
    sink.write(part(0, 256 * KiB));
    sink.write(part(256 * KiB, 512 * KiB));
    sink.write(part(512 * KiB, 768 * KiB)); // the second goes to the pool
    clock.advance(5000); // open again, with the pool's writev still in flight
    assert.equal(gate.open, true);
    sink.write(part(768 * KiB));
    const { size, digest } = await sink.finish();
    assert.equal(size, data.length);
    assert.equal(digest.toString('hex'), sha256(data));
    assert.equal(sha256(await fs.readFile(name)), sha256(data), 'the file holds the bytes in order');
    await handle.close();
  });

  it('a failed inline write fails finish, and later chunks are dropped', async () => {
    const name = file();
    await fs.writeFile(name, '');
    const handle = await fs.open(name, 'r'); // writes fail: EBADF
    const sink = new FileSink(handle, 0, digester(), { inlineWrites: new InlineWriteGate(new ManualClock()) });
    let released = 0;
    sink.write(randomData(64 * KiB), () => released++);
    sink.write(randomData(64 * KiB), () => released++); // the first is written now, and fails
    assert.equal(released, 1, 'the failed chunk is given back');
    sink.write(randomData(64 * KiB), () => released++);
    assert.equal(released, 2, 'a chunk after the failure is given back at once');
    await assert.rejects(sink.finish(), (error: NodeJS.ErrnoException) => error.code === 'EBADF');
    assert.equal(released, 3, 'each chunk is given back');
    await handle.close();
  });
});
