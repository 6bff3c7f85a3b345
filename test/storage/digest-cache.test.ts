import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { DigestCache, type DigestRecord } from '../../src/storage/digest-cache.js';
import { logLine, parseRecord, recordDigest, recordText } from '../../src/storage/digest-log.js';
import { SafeRoot } from '../../src/storage/safe-path.js';
import { tempDir } from '../helpers/fixtures.js';

/** Where the cache keeps the digest log of the folder `folderName`. */
function logPath(meta: string, folderName: string): string {
  const key = createHash('sha256').update(folderName).digest('hex');
  return path.join(meta, key.slice(0, 2), `${key}.log`);
}

function record(fill: number): DigestRecord {
  return { digests: { sha256: Buffer.alloc(32, fill) }, size: 1024, mtimeMs: 1_700_000_000_000, ino: 1000 + fill };
}

/**
 * Changes the record of `leaf` in the folder's log behind the cache's back: a read that
 * returns the change came from the disk, one that does not from the cache.
 */
async function changeOnDisk(meta: string, folderName: string, leaf: string, fill: number): Promise<void> {
  await fs.appendFile(logPath(meta, folderName), logLine(leaf, record(fill)));
}

describe('the digest cache (parsed folder logs kept in memory)', () => {
  let dir: string;
  let root: SafeRoot;
  let meta: string;
  const dirs: string[] = [];

  beforeEach(async () => {
    dir = await tempDir();
    dirs.push(dir);
    root = await SafeRoot.open(await fs.realpath(dir));
    meta = path.join(dir, 'meta');
  });
  afterEach(async () => root.close());
  after(async () => {
    for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
  });

  /** A cache of `maxBytes` over folders f0…f(folders-1) of `files` records each (written, not yet read). */
  async function filled(maxBytes: number, folders: number, files: number): Promise<DigestCache> {
    const cache = new DigestCache(root, await root.pin(['meta']), maxBytes);
    for (let f = 0; f < folders; f++) for (let i = 0; i < files; i++) await cache.write(`f${f}/file-${i}.bin`, record(1));
    return cache;
  }

  it('holds at most its byte budget of logs, forgetting the least recently used folders', async () => {
    // 100 records a folder: ~20 KB each as counted, so three fit in 64 KiB and eight do not.
    const budget = 64 * 1024;
    const cache = await filled(budget, 8, 100);
    for (let f = 0; f < 8; f++) {
      assert.deepEqual(cache.read(`f${f}/file-0.bin`)?.digests.sha256, Buffer.alloc(32, 1));
      assert.ok(cache.cachedBytes > 0 && cache.cachedBytes <= budget, `${cache.cachedBytes} bytes cached after folder ${f}`);
    }
    // The first folder was forgotten (read again from its log), the last one is still held.
    await changeOnDisk(meta, 'f0', 'file-0.bin', 2);
    await changeOnDisk(meta, 'f7', 'file-0.bin', 2);
    assert.deepEqual(cache.read('f0/file-0.bin')?.digests.sha256, Buffer.alloc(32, 2));
    assert.deepEqual(cache.read('f7/file-0.bin')?.digests.sha256, Buffer.alloc(32, 1));
  });

  it('keeps the folder asked about again over one asked about less recently', async () => {
    // Three folders of ~20 KB fit in 64 KiB, four do not.
    const cache = await filled(64 * 1024, 4, 100);
    for (const f of [0, 1, 2, 0, 0, 1, 0]) cache.read(`f${f}/file-0.bin`);
    cache.read('f3/file-0.bin'); // f2, the least recently used, goes
    for (const f of [0, 1, 2, 3]) await changeOnDisk(meta, `f${f}`, 'file-0.bin', 2);
    for (const f of [0, 1, 3]) assert.deepEqual(cache.read(`f${f}/file-0.bin`)?.digests.sha256, Buffer.alloc(32, 1), `f${f} is held`);
    assert.deepEqual(cache.read('f2/file-0.bin')?.digests.sha256, Buffer.alloc(32, 2), 'f2 was read again');
  });

  it('indexes a log grown past half the budget by appends instead of keeping it parsed', async () => {
    const budget = 32 * 1024;
    const cache = await filled(budget, 2, 20);
    cache.read('f0/file-0.bin');
    const before = cache.cachedBytes;
    assert.ok(before > 0 && before <= budget);
    for (let i = 20; i < 400; i++) await cache.write(`f0/file-${i}.bin`, record(1));
    // 400 records (~56 KB of log): an index of it (~24 KiB) fits in the budget; a parsed copy would not.
    assert.deepEqual(cache.read('f0/file-399.bin')?.digests.sha256, Buffer.alloc(32, 1));
    assert.ok(cache.cachedBytes > 0 && cache.cachedBytes <= budget, `${cache.cachedBytes} bytes cached`);
    // Indexed, the record is read from the log: a later line for the name wins.
    await changeOnDisk(meta, 'f0', 'file-398.bin', 2);
    await cache.write('f0/file-397.bin', record(3));
    assert.deepEqual(cache.read('f0/file-397.bin')?.digests.sha256, Buffer.alloc(32, 3));
    assert.deepEqual(cache.read('f1/file-0.bin')?.digests.sha256, Buffer.alloc(32, 1));
    assert.ok(cache.cachedBytes <= budget, `${cache.cachedBytes} bytes cached`);
    assert.deepEqual(cache.read('f0/file-398.bin')?.digests.sha256, Buffer.alloc(32, 2), 'indexed again from the log');
    cache.close();
  });

  it('answers from an indexed log as from a parsed one: replaced, removed, escaped and unknown names, a torn line', async () => {
    // Two caches over the same logs: one parses everything (a large budget), one indexes logs over 4 KiB.
    const pinned = await root.pin(['meta']);
    const writer = new DigestCache(root, pinned, 64 * 1024 * 1024);
    const names = ['plain.bin', 'a"quote.bin', 'back\\slash.bin', 'été.bin', '日本.txt', 'tab\tname', 'x'.repeat(255)];
    for (let i = 0; i < 300; i++) names.push(`file-${i}.bin`);
    for (const [i, name] of names.entries()) await writer.write(`big/${name}`, record(i % 250));
    await writer.write('big/file-7.bin', record(251)); // replaced
    await writer.remove('big/file-8.bin');
    await writer.remove('big/file-9.bin');
    await writer.write('big/file-9.bin', record(252)); // removed, then stored again
    // A crash in mid-append leaves a torn last line; the next append starts a new line.
    await fs.appendFile(logPath(meta, 'big'), 'sha256:00 10');
    await writer.write('big/after-tear.bin', record(253));
    const indexing = new DigestCache(root, pinned, 8 * 1024);
    const parsing = new DigestCache(root, pinned, 64 * 1024 * 1024);
    const asked = [...names, 'missing.bin', 'after-tear.bin', 'file-300.bin', 'file-3', 'ile-3.bin'];
    for (const name of asked) {
      assert.deepEqual(indexing.read(`big/${name}`), parsing.read(`big/${name}`), name);
      const stats = { size: 1024, mtimeMs: 1_700_000_000_000, ino: 1000 + (names.indexOf(name) % 250) } as Stats;
      assert.deepEqual(indexing.knownDigest(`big/${name}`, stats, 'sha256'), parsing.knownDigest(`big/${name}`, stats, 'sha256'), name);
    }
    assert.equal(indexing.read('big/file-8.bin'), undefined);
    assert.deepEqual(indexing.read('big/file-7.bin')?.digests.sha256, Buffer.alloc(32, 251));
    assert.deepEqual(indexing.read('big/file-9.bin')?.digests.sha256, Buffer.alloc(32, 252));
    assert.deepEqual(indexing.read('big/after-tear.bin')?.digests.sha256, Buffer.alloc(32, 253));
    assert.ok(indexing.cachedBytes < parsing.cachedBytes / 2, `${indexing.cachedBytes} bytes for the index of ~${names.length} lines, ${parsing.cachedBytes} parsed`);
    // Appends through the indexing cache are indexed as they are written.
    await indexing.write('big/new.bin', record(9));
    await indexing.remove('big/plain.bin');
    assert.deepEqual(indexing.read('big/new.bin')?.digests.sha256, Buffer.alloc(32, 9));
    assert.equal(indexing.read('big/plain.bin'), undefined);
    for (const cache of [writer, indexing, parsing]) cache.close();
  });

  it('compacts an indexed log that became mostly dead lines, and indexes the new one', async () => {
    const cache = new DigestCache(root, await root.pin(['meta']), 8 * 1024);
    for (let i = 0; i < 50; i++) await cache.write(`c/file-${i}.bin`, record(1));
    assert.deepEqual(cache.read('c/file-0.bin')?.digests.sha256, Buffer.alloc(32, 1));
    // 50 names rewritten 40 times: ~2,000 lines, 50 live, past the 64 KiB compaction size.
    for (let round = 2; round < 42; round++) for (let i = 0; i < 50; i++) await cache.write(`c/file-${i}.bin`, record(round));
    const { size } = await fs.stat(logPath(meta, 'c'));
    assert.ok(size < 50 * 1024, `log of ${size} bytes after compaction`);
    for (let i = 0; i < 50; i++) assert.deepEqual(cache.read(`c/file-${i}.bin`)?.digests.sha256, Buffer.alloc(32, 41), `file-${i}`);
    cache.close();
  });

  it('closes the logs it holds open when closed, and opens them again when asked', async () => {
    const cache = new DigestCache(root, await root.pin(['meta']), 8 * 1024);
    for (let i = 0; i < 200; i++) await cache.write(`o/file-${i}.bin`, record(1));
    const openLogs = async (): Promise<number> => {
      let n = 0;
      for (const fd of await fs.readdir('/proc/self/fd')) {
        const target = await fs.readlink(`/proc/self/fd/${fd}`).catch(() => '');
        if (target === (await fs.realpath(logPath(meta, 'o')))) n++;
      }
      return n;
    };
    assert.deepEqual(cache.read('o/file-5.bin')?.digests.sha256, Buffer.alloc(32, 1));
    assert.equal(await openLogs(), 1, 'indexed: held open');
    cache.close();
    assert.equal(await openLogs(), 0, 'closed');
    assert.deepEqual(cache.read('o/file-6.bin')?.digests.sha256, Buffer.alloc(32, 1));
    cache.close();
  });

  it('answers each file from its own folder\'s log when folders alternate', async () => {
    const cache = new DigestCache(root, await root.pin(['meta']), 1024 * 1024);
    const folders = ['', 'a', 'b', 'a/b'];
    for (const [f, folder] of folders.entries()) await cache.write(folder === '' ? 'x.bin' : `${folder}/x.bin`, record(f + 1));
    for (let round = 0; round < 3; round++) {
      for (const [f, folder] of folders.entries()) {
        const stats = { size: 1024, mtimeMs: 1_700_000_000_000.5, ino: 1000 + f + 1 } as Stats;
        assert.deepEqual(cache.knownDigest(folder === '' ? 'x.bin' : `${folder}/x.bin`, stats, 'sha256'), Buffer.alloc(32, f + 1), `folder "${folder}"`);
      }
    }
  });
});

describe('recordDigest (a record\'s digest for a file, without parsing the whole record)', () => {
  const facts = { size: 1024, mtimeMs: 1_700_000_000_123, ino: 4242 };
  const sha = Buffer.alloc(32, 0xab);
  const b3 = Buffer.alloc(32, 0x3c);

  /** What parseRecord + matches say: the reference recordDigest must agree with. */
  function reference(text: string, of: typeof facts, algorithm: 'sha256' | 'blake3'): Buffer | undefined {
    const parsed = parseRecord(text);
    return parsed && parsed.size === of.size && parsed.mtimeMs === of.mtimeMs && parsed.ino === of.ino ? parsed.digests[algorithm] : undefined;
  }

  it('agrees with parseRecord on the records ferry writes', () => {
    const texts = [
      recordText({ digests: { sha256: sha }, ...facts }),
      recordText({ digests: { blake3: b3 }, ...facts }),
      recordText({ digests: { sha256: sha, blake3: b3 }, ...facts }),
      recordText({ digests: { blake3: b3, sha256: sha }, ...facts }),
      recordText({ digests: { sha256: sha }, size: 0, mtimeMs: -86_400_000, ino: 7 }),
      `${sha.toString('hex')} 1024 1700000000123 4242`, // version 0.1: a bare hex is a sha256
    ];
    const others = [facts, { ...facts, size: 1025 }, { ...facts, mtimeMs: facts.mtimeMs + 1 }, { ...facts, ino: 4243 }, { size: 0, mtimeMs: -86_400_000, ino: 7 }];
    for (const text of texts) {
      for (const of of others) {
        for (const algorithm of ['sha256', 'blake3'] as const) {
          assert.deepEqual(recordDigest(text, of, algorithm), reference(text, of, algorithm), `${text} for ${JSON.stringify(of)} in ${algorithm}`);
        }
      }
    }
  });

  it('finds no digest in a malformed record', () => {
    const hex = sha.toString('hex');
    for (const text of ['', '1024 1700000000123 4242', `sha256:${hex.slice(1)} 1024 1700000000123 4242`, `sha256:${hex.slice(2)}zz 1024 1700000000123 4242`, `sha256:${hex} 1024 1700000000123`, `sha256:${hex} 1024 17e11 4242`, `sha256:${hex} +1024 1700000000123 4242`, `sha256:${hex} 1024 1700000000123 4242x`]) {
      assert.equal(recordDigest(text, facts, 'sha256'), undefined, text);
    }
  });
});
