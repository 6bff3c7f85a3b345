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
