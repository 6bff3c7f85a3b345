import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, constants, openSync, promises as fs, readSync } from 'node:fs';
import path from 'node:path';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { digestOf } from '../../src/io/digest.js';
import { Store } from '../../src/storage/store.js';
import { sha256, tempDir } from '../helpers/fixtures.js';

/** Where the store keeps the digest log of the folder `folderName` ('' for the root). */
function logPath(root: string, folderName: string): string {
  const key = createHash('sha256').update(folderName).digest('hex');
  return path.join(root, '.ferry', 'meta', key.slice(0, 2), `${key}.log`);
}

async function metaFiles(root: string): Promise<string[]> {
  const found: string[] = [];
  const meta = path.join(root, '.ferry', 'meta');
  for (const sub of await fs.readdir(meta)) for (const file of await fs.readdir(path.join(meta, sub))) found.push(file);
  return found;
}

async function put(store: Store, name: string, data: Buffer, options = {}): Promise<void> {
  const upload = await store.beginUpload(name, options);
  upload.write(data);
  await upload.commit({ size: data.length });
}

/** Rewrites the digest claimed for `leaf` in its log line: a stat that reports it read the log. */
async function claimInLog(file: string, leaf: string, claimed: string): Promise<void> {
  const text = await fs.readFile(file, 'utf8');
  const lines = text.split('\n').map((line) => (line.endsWith(`\t${JSON.stringify(leaf)}`) ? line.replace(/sha256:[0-9a-f]{64}/, `sha256:${claimed}`) : line));
  await fs.writeFile(file, lines.join('\n'));
}

describe('digest logs (a log per folder in .ferry/meta)', () => {
  let parent: string;
  let root: string;
  let store: Store;
  const dirs: string[] = [];

  beforeEach(async () => {
    parent = await tempDir();
    dirs.push(parent);
    root = path.join(parent, 'root');
    store = await Store.open(root, { fsync: false });
  });
  afterEach(async () => store.close());
  after(async () => {
    for (const dir of dirs) await fs.rm(dir, { recursive: true, force: true });
  });

  it('keeps the records of a folder in one log: no file per upload', async () => {
    for (let i = 0; i < 20; i++) await put(store, `f/single-${i}.txt`, Buffer.from(`single ${i}`));
    const files = Array.from({ length: 30 }, (_, i) => {
      const data = Buffer.from(`batched ${i}`);
      return { name: `f/batched-${i}.txt`, data, digest: digestOf('sha256', data) };
    });
    const outcomes = await store.storeBatch(files, {});
    assert.ok(outcomes.every((o) => o.status === 'stored'));
    assert.deepEqual(await metaFiles(root), [path.basename(logPath(root, 'f'))]);
    const lines = (await fs.readFile(logPath(root, 'f'), 'utf8')).trimEnd().split('\n');
    assert.equal(lines.length, 50);
  });

  it('serves digests from the log after a restart, and forgets removed files and folders', async () => {
    await put(store, 'k/kept.txt', Buffer.from('kept'));
    await put(store, 'k/gone.txt', Buffer.from('gone'));
    await store.close();
    const claimed = 'cd'.repeat(32);
    await claimInLog(logPath(root, 'k'), 'kept.txt', claimed);
    store = await Store.open(root, { fsync: false });
    assert.equal((await store.stat('k/kept.txt')).digest.toString('hex'), claimed, 'the digest came from the log');
    await store.remove('k/gone.txt');
    const last = (await fs.readFile(logPath(root, 'k'), 'utf8')).trimEnd().split('\n').at(-1);
    assert.equal(last, '-\t"gone.txt"');
    // Same name, same size, placed by hand: hashed, not answered from a forgotten record.
    await fs.writeFile(path.join(root, 'k', 'gone.txt'), 'GONE');
    assert.equal((await store.stat('k/gone.txt')).digest.toString('hex'), sha256(Buffer.from('GONE')));
    await store.removeTree('k');
    await assert.rejects(fs.stat(logPath(root, 'k')), { code: 'ENOENT' });
  });

  it('keeps names with quotes, spaces and non-ASCII letters in the log, read back as written', async () => {
    const leaves = ['say "hi".txt', 'ünïcødé ✓.txt', 'tab-less  two  spaces.txt'];
    for (const leaf of leaves) await put(store, `q/${leaf}`, Buffer.from(leaf));
    await store.close();
    for (const leaf of leaves) await claimInLog(logPath(root, 'q'), leaf, createHash('sha256').update(`claimed ${leaf}`).digest('hex'));
    store = await Store.open(root, { fsync: false });
    for (const leaf of leaves) {
      assert.equal((await store.stat(`q/${leaf}`)).digest.toString('hex'), createHash('sha256').update(`claimed ${leaf}`).digest('hex'), leaf);
    }
  });

  it('stores and serves files when a FIFO is planted where a folder\'s log goes (hashing them instead)', async () => {
    const log = logPath(root, 'fifo');
    await fs.mkdir(path.dirname(log), { recursive: true });
    execFileSync('mkfifo', [log]);
    // A reader holds the FIFO open, so anything written into it stays there to be seen.
    const reader = openSync(log, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      await put(store, 'fifo/a.txt', Buffer.from('through a fifo'));
      assert.equal((await store.stat('fifo/a.txt')).digest.toString('hex'), sha256(Buffer.from('through a fifo')));
      assert.ok((await fs.lstat(log)).isFIFO(), 'left as it was');
      let written = 0;
      try {
        written = readSync(reader, Buffer.alloc(4096)); // 0: no writer left, nothing written
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error; // a writer still holds it, nothing written
      }
      assert.equal(written, 0, 'nothing was written into the FIFO');
    } finally {
      closeSync(reader);
    }
  });

  it('loses only the torn line after a crash, and appends after it on a line of its own', async () => {
    await put(store, 't/a.txt', Buffer.from('aaaa'));
    await put(store, 't/b.txt', Buffer.from('bbbb'));
    await store.close();
    const log = logPath(root, 't');
    await claimInLog(log, 'a.txt', 'ab'.repeat(32));
    const text = await fs.readFile(log, 'utf8');
    await fs.writeFile(log, text.slice(0, text.length - 12)); // b's line cut short, no newline
    store = await Store.open(root, { fsync: false });
    assert.equal((await store.stat('t/a.txt')).digest.toString('hex'), 'ab'.repeat(32));
    assert.equal((await store.stat('t/b.txt')).digest.toString('hex'), sha256(Buffer.from('bbbb')), 'b is hashed again');
    await put(store, 't/c.txt', Buffer.from('cccc'));
    const lines = (await fs.readFile(log, 'utf8')).split('\n');
    const torn = lines.findIndex((line) => line.startsWith('sha256:') && !line.includes('\t'));
    assert.ok(torn >= 0, 'the torn line is still there');
    assert.ok(lines.slice(torn + 1).some((line) => /^sha256:[0-9a-f]{64} 4 \d+ \d+\t"c\.txt"$/.test(line)), 'c has a whole line of its own');
    await store.close();
    await claimInLog(log, 'c.txt', 'ef'.repeat(32));
    store = await Store.open(root, { fsync: false });
    assert.equal((await store.stat('t/c.txt')).digest.toString('hex'), 'ef'.repeat(32));
  });

  it('rewrites a log that is mostly replaced lines: 2,000 overwrites leave a small log', async () => {
    let data = Buffer.alloc(0);
    for (let i = 0; i < 2000; i++) {
      data = Buffer.from(`version ${i}`);
      await put(store, 'o/file.txt', data, { overwrite: true });
      if (i === 1000) await store.stat('o/file.txt'); // cached from here on: both paths compact
    }
    const { size } = await fs.stat(logPath(root, 'o'));
    assert.ok(size < 64 * 1024 * 2, `log of ${size} bytes after 2,000 overwrites`);
    assert.equal((await store.stat('o/file.txt')).digest.toString('hex'), sha256(data));
    await store.close();
    store = await Store.open(root, { fsync: false });
    assert.equal((await store.stat('o/file.txt')).digest.toString('hex'), sha256(data));
  });
});
