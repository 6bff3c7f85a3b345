import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { connect, type FerryError } from '../../src/index.js';
import { startServeProcess } from '../helpers/cli.js';
import { assertDigest, digestHex, makeSentinel, randomData, sha256, sha256File, startServer, tempDir, temporaries, visibleTree, type Sentinel } from '../helpers/fixtures.js';
import { rawUpload } from '../services/helpers.js';

/** Crash and fault safety (issue 4): SIGKILL, replace-while-reading, racing writers, full disks, quotas. */

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const rawNumber = (name: string): number => Number(/^raw\/(\d+)\.file$/.exec(name)?.[1] ?? NaN);

describe('crash and fault safety', () => {
  let sentinel: Sentinel;
  before(async () => (sentinel = await makeSentinel()));
  after(() => sentinel.cleanup());

  it('a server SIGKILLed during uploads keeps every acknowledged file whole and shows nothing partial', async () => {
    const root = await tempDir('ferry-crash-');
    const sent = new Map<string, string>(); // every name tried → sha256 of its bytes
    const acked = new Map<string, string>(); // names the server acknowledged
    const rawSent = new Set<string>();
    const rawAcked = new Set<string>();
    let highestRaw = 0;
    try {
      // Kill at several points: at once, early in the bodies, mid-way, and after most commits.
      for (const [round, killAfterMs] of [5, 40, 150, 400].entries()) {
        const serve = await startServeProcess(['--root', root, '--raw-port', '0']);
        const client = await connect({ port: serve.port, timeoutMs: 5000 });
        const work: Promise<unknown>[] = [];
        for (let i = 0; i < 8; i++) {
          const data = randomData([0, 1, 1000, 70_000, 600_000, 1_500_000, 3_000_000, 200][i]!);
          const name = `round${round}/file${i}.bin`;
          sent.set(name, sha256(data));
          const reported = (r: { digest: string; algorithm: 'sha256' | 'blake3' }): string => (r.digest === digestHex(r.algorithm, data) ? sha256(data) : `a wrong digest was reported: ${r.digest}`);
          work.push(client.put(data, name).then((r) => acked.set(name, reported(r)), () => undefined));
        }
        for (let j = 0; j < 3; j++) {
          const data = randomData(50_000 * (j + 1));
          rawSent.add(sha256(data));
          // A clean close is an acknowledgement even around the kill: a dying server resets.
          work.push(rawUpload(serve.rawPort!, data).then(({ reset }) => !reset && rawAcked.add(sha256(data)), () => undefined));
        }
        await sleep(killAfterMs);
        await serve.stop('SIGKILL');
        await Promise.allSettled(work);
        client.destroy();
      }
      const serve = await startServeProcess(['--root', root, '--raw-port', '0']);
      try {
        assert.ok(acked.size > 0, 'some uploads were acknowledged before a kill');
        for (const [name, digest] of acked) assert.equal(await sha256File(path.join(root, name)), digest, `${name} is intact`);
        const visible = (await visibleTree(root)).filter((p) => !p.endsWith('/'));
        for (const name of visible) {
          const digest = await sha256File(path.join(root, name));
          if (name.startsWith('raw/')) {
            assert.ok(rawSent.has(digest), `${name} is a whole raw upload`);
            highestRaw = Math.max(highestRaw, rawNumber(name));
          } else {
            assert.equal(digest, sent.get(name), `${name} is whole`);
          }
        }
        const rawDigests = await Promise.all(visible.filter((n) => n.startsWith('raw/')).map((n) => sha256File(path.join(root, n))));
        for (const digest of rawAcked) assert.ok(rawDigests.includes(digest), 'an acknowledged raw upload survived');
        assert.deepEqual(await temporaries(root), [], 'temporaries are swept at start');
        // Raw numbering continues above every number handed out before the crashes.
        const { reset } = await rawUpload(serve.rawPort!, Buffer.from('after the crashes'));
        assert.equal(reset, false);
        const fresh = (await visibleTree(root)).filter((n) => n.startsWith('raw/') && rawNumber(n) > highestRaw);
        assert.equal(fresh.length, 1);
        const client = await connect({ port: serve.port });
        assert.equal((await client.put(Buffer.from('ok'), 'after.txt')).size, 2);
        await client.close();
      } finally {
        await serve.stop();
      }
      await sentinel.assertUntouched();
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });

  it('replacing a file while it is being downloaded: the reader gets the old version whole', async () => {
    const server = await startServer();
    try {
      const old = randomData(8 * 1024 * 1024);
      const writer = await connect(server.address);
      await writer.put(old, 'busy.bin');
      const reader = await connect(server.address);
      const received: Buffer[] = [];
      let replaced: Promise<unknown> | undefined;
      const slow = new Writable({
        highWaterMark: 64 * 1024,
        write(chunk: Buffer, _encoding, done) {
          received.push(chunk);
          replaced ??= writer.put(randomData(5 * 1024 * 1024), 'busy.bin', { overwrite: true });
          setTimeout(done, 1);
        },
      });
      const result = await reader.get('busy.bin', slow);
      await replaced;
      assertDigest(result, old);
      assert.ok(Buffer.concat(received).equals(old));
      assert.notEqual((await reader.stat('busy.bin')).digest, digestHex(result.algorithm, old), 'the new version is in place now');
      await reader.close();
      await writer.close();
    } finally {
      await server.stop();
    }
  });

  it('concurrent puts to one name: exactly one wins, whole', async () => {
    const server = await startServer();
    try {
      const clients = await Promise.all(Array.from({ length: 10 }, () => connect(server.address)));
      const datas = clients.map(() => randomData(300_000));
      const results = await Promise.allSettled(clients.map((c, i) => c.put(datas[i]!, 'race.bin')));
      const winners = results.filter((r) => r.status === 'fulfilled');
      assert.equal(winners.length, 1);
      for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as FerryError).code, 'EXISTS');
      const stored = await sha256File(path.join(server.root, 'race.bin'));
      assert.ok(datas.some((d) => sha256(d) === stored));
      // With overwrite every put succeeds; what remains is one of them, whole.
      await Promise.all(clients.map((c, i) => c.put(datas[i]!, 'race2.bin', { overwrite: true })));
      const last = await sha256File(path.join(server.root, 'race2.bin'));
      assert.ok(datas.some((d) => sha256(d) === last));
      await Promise.all(clients.map((c) => c.close()));
      assert.deepEqual(await temporaries(server.root), []);
    } finally {
      await server.stop();
    }
  });

  it('enforces --quota on declared and streamed sizes, and checks free space before accepting', async () => {
    const server = await startServer({ quota: 200_000 });
    try {
      const client = await connect(server.address);
      await client.put(randomData(120_000), 'a.bin');
      await assert.rejects(client.put(randomData(120_000), 'b.bin'), (e: FerryError) => e.code === 'QUOTA');
      await assert.rejects(client.put(Readable.from([randomData(60_000), randomData(60_000)]), 'c.bin'), (e: FerryError) => e.code === 'QUOTA');
      assert.deepEqual(await visibleTree(server.root), ['a.bin']);
      await client.close();
    } finally {
      await server.stop();
    }
    const unlimited = await startServer();
    try {
      const client = await connect(unlimited.address);
      await assert.rejects(client.put(Readable.from([]), 'huge.bin', { size: 2 ** 52 }), (e: FerryError) => e.code === 'NO_SPACE');
      await client.close();
    } finally {
      await unlimited.stop();
    }
  });

  it('a disk that fills up mid-write (ENOSPC) is a clean NO_SPACE and the old file stays', async (t) => {
    const mount = await tempDir('ferry-small-disk-');
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mount], { stdio: 'ignore' });
    } catch {
      await fs.rm(mount, { recursive: true, force: true });
      t.skip('cannot mount a small tmpfs here (needs root)');
      return;
    }
    try {
      const server = await startServer({ root: path.join(mount, 'root') });
      const client = await connect(server.address);
      const old = randomData(100_000);
      await client.put(old, 'keep.bin');
      // Chunked (size unknown), so only the write itself can discover the disk is full.
      const big = Readable.from(Array.from({ length: 12 }, () => randomData(256 * 1024)));
      await assert.rejects(client.put(big, 'keep.bin', { overwrite: true }), (e: FerryError) => e.code === 'NO_SPACE');
      assert.equal(await sha256File(path.join(server.root, 'keep.bin')), sha256(old));
      assert.deepEqual(await temporaries(server.root), []);
      assert.equal((await client.put(Buffer.from('small'), 'small.txt')).size, 5, 'the connection and the server still work');
      await client.close();
      await server.server.close(200);
    } finally {
      execFileSync('umount', [mount], { stdio: 'ignore' });
      await fs.rm(mount, { recursive: true, force: true });
    }
  });
});
