import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { describe, it } from 'node:test';
import { digestOf } from '../../src/io/digest.js';
import { S3Store } from '../../src/storage/s3/store.js';
import type { S3Upload } from '../../src/storage/s3/upload.js';
import { randomData, tempDir } from '../helpers/fixtures.js';
import { s3Scratch, s3Skip, TEST_PART_SIZE } from '../helpers/s3.js';

/** Not a divisor of the part size: reads straddle part boundaries, as a connection's do. */
const READ = 700 * 1024;

/** Writes `data` in READ-sized reads, waiting whenever the upload asks to; returns the most part data it held. */
async function writeAll(upload: S3Upload, data: Buffer): Promise<number> {
  let most = 0;
  for (let at = 0; at < data.length; at += READ) {
    const ready = upload.write(data.subarray(at, at + READ));
    most = Math.max(most, upload.heldBytes);
    if (!ready) await new Promise<void>((resolve) => upload.onDrain(resolve));
  }
  return most;
}

async function readBack(store: S3Store, name: string): Promise<Buffer> {
  const file = await store.openRead(name);
  const chunks: Buffer[] = [];
  for await (const chunk of file.read(0, file.size - 1, 256 * 1024)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('S3 store: a large upload\'s memory', { skip: s3Skip() }, () => {
  it('holds two part buffers and at most one read more, and stores the bytes in order', async () => {
    const scratch = await s3Scratch();
    const stateRoot = await tempDir();
    const store = await S3Store.open(scratch.location, { stateRoot, partSize: TEST_PART_SIZE });
    try {
      const data = randomData(5 * TEST_PART_SIZE + 12345);
      // BLAKE3 sessions hash SHA-256 on the hashing thread, whose backlog also pauses writes.
      const upload = await store.beginUpload('big.bin', { size: data.length, algorithm: 'blake3' });
      const most = await writeAll(upload, data);
      assert.ok(most <= 2 * TEST_PART_SIZE + READ, `held ${most} bytes of part data, over two parts and one read`);
      const entry = await upload.commit({ size: data.length, digest: digestOf('blake3', data) });
      assert.equal(entry.size, data.length);
      assert.ok((await readBack(store, 'big.bin')).equals(data), 'the store holds the bytes sent, in order');

      // A cut upload's record names every part it finished (records are written only every few
      // parts while it runs), and its digest ends exactly there though reads straddle parts.
      const cut = await store.beginUpload('cut.bin', { size: data.length, resume: true });
      await writeAll(cut, data.subarray(0, 3 * TEST_PART_SIZE + READ));
      await cut.abort(true);
      const probe = await store.probeUpload('cut.bin', data.length);
      assert.equal(probe.offset, 3 * TEST_PART_SIZE);
      assert.deepEqual(probe.digest, digestOf('sha256', data.subarray(0, probe.offset)));
    } finally {
      await store.close();
      await scratch.cleanup();
      await fs.rm(stateRoot, { recursive: true, force: true });
    }
  });

  it('keeps a read that finds no free part buffer as it came (no copy), and releases every read once', async () => {
    const scratch = await s3Scratch();
    const stateRoot = await tempDir();
    const store = await S3Store.open(scratch.location, { stateRoot, partSize: TEST_PART_SIZE });
    try {
      const data = randomData(4 * TEST_PART_SIZE + 777);
      const upload = await store.beginUpload('kept.bin', { size: data.length, algorithm: 'blake3' });
      const released: number[] = [];
      let keptWhileWaiting = 0;
      for (let at = 0, read = 0; at < data.length; at += READ, read++) {
        const ready = upload.write(
          data.subarray(at, at + READ),
          () => released.push(read),
        );
        if (!ready) {
          // The part buffers are full: the rest of this read waits, still the caller's memory.
          if (!released.includes(read)) keptWhileWaiting++;
          await new Promise<void>((resolve) => upload.onDrain(resolve));
        }
      }
      await upload.commit({ size: data.length, digest: digestOf('blake3', data) });
      const reads = Math.ceil(data.length / READ);
      assert.ok(keptWhileWaiting > 0, 'some read waited for a part buffer without being copied');
      assert.deepEqual(
        [...released].sort((a, b) => a - b),
        Array.from({ length: reads }, (_, i) => i),
        'every read released exactly once',
      );
      assert.ok((await readBack(store, 'kept.bin')).equals(data), 'the store holds the bytes sent, in order');
    } finally {
      await store.close();
      await scratch.cleanup();
      await fs.rm(stateRoot, { recursive: true, force: true });
    }
  });
});
