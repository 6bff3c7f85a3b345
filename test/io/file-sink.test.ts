import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FileSink, type FileSinkOptions } from '../../src/io/file-sink.js';
import { createHasher } from '../../src/io/digest.js';
import { InlineDigester } from '../../src/io/digester.js';
import { eventually, randomData, sha256, tempDir } from '../helpers/fixtures.js';

const MiB = 1024 * 1024;

/** Writes `data` in 256 KiB chunks, pausing whenever the sink asks (as the server does). */
async function writeAll(sink: FileSink, data: Buffer): Promise<void> {
  for (let at = 0; at < data.length; at += MiB / 4) {
    if (!sink.write(data.subarray(at, at + MiB / 4))) await new Promise<void>((resolve) => sink.onDrain(resolve));
  }
}

/** A real file handle whose datasync is replaced (counted, failed or held back). */
function withDatasync(handle: fs.FileHandle, datasync: () => Promise<void>): fs.FileHandle {
  return new Proxy(handle, {
    get(target, key) {
      if (key === 'datasync') return datasync;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe('FileSink background syncs (issue 11: flush while writing)', () => {
  let dir: string;
  const data = randomData(40 * MiB);
  let n = 0;
  const open = (): Promise<fs.FileHandle> => fs.open(path.join(dir, `f${n++}`), 'w');

  before(async () => {
    dir = await tempDir();
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function sinkOf(handle: fs.FileHandle, options: FileSinkOptions): Promise<FileSink> {
    return new FileSink(handle, 0, new InlineDigester(createHasher('sha256')), options);
  }

  it('syncs in the background while the bytes are still arriving', async () => {
    const handle = await open();
    let calls = 0;
    const sink = await sinkOf(
      withDatasync(handle, () => {
        calls++;
        return handle.datasync();
      }),
      { syncEvery: MiB, maxUnsynced: 4 * MiB },
    );
    await writeAll(sink, data);
    // Every byte has been handed over, nothing finished yet: with at most 4 MiB queued and
    // 4 MiB unsynced, most of the 40 MiB must already be covered by finished syncs.
    const beforeFinish = sink.backgroundSyncs;
    assert.ok(beforeFinish >= 2, `${beforeFinish} background syncs before finish`);
    const { size, digest: digest } = await sink.finish();
    assert.equal(size, data.length);
    assert.equal(digest.toString('hex'), sha256(data));
    assert.equal(sink.backgroundSyncs, calls, 'every sync started was awaited by finish');
    await handle.close();
  });

  it('never syncs without syncEvery (stores without fsync)', async () => {
    const handle = await open();
    let calls = 0;
    const sink = await sinkOf(
      withDatasync(handle, () => {
        calls++;
        return handle.datasync();
      }),
      {},
    );
    await writeAll(sink, data);
    await sink.finish();
    assert.equal(calls, 0);
    assert.equal(sink.backgroundSyncs, 0);
    await handle.close();
  });

  it('a failed background sync fails finish and stops writing', async () => {
    const handle = await open();
    const failure = Object.assign(new Error('ENOSPC: no space left on device, fdatasync'), { code: 'ENOSPC' });
    const sink = await sinkOf(
      withDatasync(handle, () => Promise.reject(failure)),
      { syncEvery: MiB, maxUnsynced: 4 * MiB },
    );
    await writeAll(sink, data);
    await assert.rejects(sink.finish(), (error) => error === failure);
    assert.ok((await handle.stat()).size < data.length, 'writing stopped after the failed sync');
    await handle.close();
  });

  it('a sync that does not finish pauses writing once maxUnsynced bytes are unsynced', async () => {
    const handle = await open();
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let calls = 0;
    const sink = await sinkOf(
      withDatasync(handle, () => {
        calls++;
        return held;
      }),
      { syncEvery: MiB, maxUnsynced: 4 * MiB },
    );
    let written = false;
    const writing = writeAll(sink, data).then(() => (written = true));
    await eventually(() => calls === 1, 3000, 'the first background sync');
    // Unbounded writing would reach 40 MiB within this pause; bounded, it stops at about
    // maxUnsynced + one queue (≤ 4 MiB) while the sync is held.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const size = (await handle.stat()).size;
    assert.ok(size <= 9 * MiB, `${size} bytes written behind a held sync`);
    assert.equal(written, false, 'the source stays paused');
    release();
    await writing;
    const { size: total, digest: digest } = await sink.finish();
    assert.equal(total, data.length);
    assert.equal(digest.toString('hex'), sha256(data));
    assert.equal(sha256(await fs.readFile(path.join(dir, `f${n - 1}`))), sha256(data));
    await handle.close();
  });
});

describe('FileSink joins chunks that adjoin in memory (TLS records read into one slab)', () => {
  let dir: string;
  let n = 0;
  const KiB = 1024;
  before(async () => {
    dir = await tempDir();
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** A pool-writing sink over a real file whose writev calls are recorded (buffer lengths per call). */
  async function recordingSink(): Promise<{ sink: FileSink; handle: fs.FileHandle; name: string; writes: number[][] }> {
    const name = path.join(dir, `j${n++}`);
    const real = await fs.open(name, 'w');
    const writes: number[][] = [];
    const handle = new Proxy(real, {
      get(target, key) {
        if (key === 'writev') {
          return (buffers: Buffer[], position: number) => {
            writes.push(buffers.map((b) => b.length));
            return target.writev(buffers, position);
          };
        }
        const value: unknown = Reflect.get(target, key, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    return { sink: new FileSink(handle, 0, new InlineDigester(createHasher('sha256')), { inlineWrites: false }), handle: real, name, writes };
  }

  it('writes 64 adjoining 16 KiB slices of one buffer as one 1 MiB write, and releases each after it', async () => {
    const { sink, handle, name, writes } = await recordingSink();
    const data = randomData(MiB);
    let released = 0;
    for (let at = 0; at < data.length; at += 16 * KiB) sink.write(data.subarray(at, at + 16 * KiB), () => released++);
    assert.equal(released, 0);
    const { size, digest } = await sink.finish();
    assert.equal(size, MiB);
    assert.equal(digest.toString('hex'), sha256(data));
    assert.deepEqual(writes, [[MiB]]);
    assert.equal(released, 64);
    assert.equal(sha256(await fs.readFile(name)), sha256(data));
    await handle.close();
  });

  it('joins at most 1 MiB, and never across a gap or another buffer', async () => {
    const { sink, handle, name, writes } = await recordingSink();
    const data = randomData(3 * MiB);
    const other = randomData(16 * KiB);
    const expected: Buffer[] = [];
    const put = (chunk: Buffer): void => {
      expected.push(chunk);
      sink.write(chunk);
    };
    for (let at = 0; at < 2 * MiB + 16 * KiB; at += 16 * KiB) put(data.subarray(at, at + 16 * KiB)); // 2 MiB + 16 KiB adjoining
    put(data.subarray(2 * MiB + 32 * KiB, 2 * MiB + 48 * KiB)); // a 16 KiB gap before it
    put(other); // another buffer
    put(data.subarray(2 * MiB + 48 * KiB, 2 * MiB + 64 * KiB)); // adjoins the slice before `other`, but not in stream order
    const { digest } = await sink.finish();
    const whole = Buffer.concat(expected);
    assert.equal(digest.toString('hex'), sha256(whole));
    assert.equal(sha256(await fs.readFile(name)), sha256(whole));
    const lengths = writes.flat();
    assert.ok(lengths.every((length) => length <= MiB), `no write over 1 MiB: ${lengths.join(',')}`);
    assert.deepEqual(lengths.slice(0, 2), [MiB, MiB], 'the 2 MiB of adjoining slices went as two joined buffers');
    assert.deepEqual(lengths.slice(2), [16 * KiB, 16 * KiB, 16 * KiB, 16 * KiB]);
    await handle.close();
  });

  it('finish and abort(true) leave no end-of-turn flush pending (it would keep the event loop alive)', async () => {
    const immediates = (): number => process.getActiveResourcesInfo().filter((kind) => kind === 'Immediate').length;
    for (const end of [(sink: FileSink) => sink.finish(), (sink: FileSink) => sink.abort(true)]) {
      const { sink, handle } = await recordingSink();
      const before = immediates();
      sink.write(randomData(16 * KiB));
      assert.equal(immediates(), before + 1, 'the held chunk waits for the end of the turn');
      const ending = end(sink);
      assert.equal(immediates(), before, 'ending the sink took the pending flush with it');
      await ending;
      await handle.close();
    }
  });

  it('abort(true) writes the held bytes (a download kept for resuming); settle gives them back unwritten', async () => {
    const kept = await recordingSink();
    const data = randomData(256 * KiB);
    let released = 0;
    for (let at = 0; at < data.length; at += 16 * KiB) kept.sink.write(data.subarray(at, at + 16 * KiB), () => released++);
    await kept.sink.abort(true);
    assert.equal(released, 16);
    assert.equal(sha256(await fs.readFile(kept.name)), sha256(data));
    await kept.handle.close();

    const dropped = await recordingSink();
    released = 0;
    for (let at = 0; at < data.length; at += 16 * KiB) dropped.sink.write(data.subarray(at, at + 16 * KiB), () => released++);
    await dropped.sink.settle();
    assert.equal(released, 16);
    assert.deepEqual(dropped.writes, []);
    await dropped.handle.close();
  });
});
