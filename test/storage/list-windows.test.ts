import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { folderStamp, NameWindows, SmallestAfter, utf8Bounds } from '../../src/storage/list-page.js';
import { Store } from '../../src/storage/store.js';
import { tempDir } from '../helpers/fixtures.js';

/** What one pass over `names` keeps for a page after `after` (NameWindows.windowFor(count) names). */
function pass(names: string[], after: string, count: number): { entries: Array<{ key: string; value: string }>; more: boolean } {
  const page = new SmallestAfter<string>(after, NameWindows.windowFor(count));
  for (const name of names) page.offer(name, name);
  return page.entries();
}

describe('name windows (a pass over a folder kept for the next pages of its listing)', () => {
  const names = Array.from({ length: 100 }, (_, i) => `n${String(i).padStart(3, '0')}`).reverse();

  it('serves the pages after the one read from the window, in order, until the window runs out', () => {
    const windows = new NameWindows<string>();
    const read = pass(names, '', 4); // 32 names: n000…n031
    assert.equal(read.entries.length, 32);
    windows.keep('f', 'stamp-1', '', read);
    assert.deepEqual(windows.take('f', 'stamp-1', 'n003', 4), { values: ['n004', 'n005', 'n006', 'n007'], more: true });
    assert.deepEqual(windows.take('f', 'stamp-1', 'n027', 8), { values: ['n028', 'n029', 'n030', 'n031'], more: true }, 'the window\'s end: short, more to read');
    assert.equal(windows.take('f', 'stamp-1', 'n031', 4), undefined, 'past the window: a new pass');
    assert.deepEqual(windows.take('f', 'stamp-1', 'm', 2), { values: ['n000', 'n001'], more: true }, 'any name before its first: the window holds all after its start');
    windows.keep('f', 'stamp-1', 'n050', pass(names, 'n050', 4));
    assert.equal(windows.take('f', 'stamp-1', 'n049', 4), undefined, 'before the window\'s start: a new pass');
    assert.deepEqual(windows.take('f', 'stamp-1', 'n050', 1)?.values, ['n051']);
    assert.equal(windows.take('g', 'stamp-1', 'n003', 4), undefined, 'another folder');
  });

  it('ends the listing when the window holds the folder\'s last names', () => {
    const windows = new NameWindows<string>();
    windows.keep('f', 's', 'n090', pass(names, 'n090', 4));
    assert.deepEqual(windows.take('f', 's', 'n095', 4), { values: ['n096', 'n097', 'n098', 'n099'], more: false });
    assert.deepEqual(windows.take('f', 's', 'n099', 4), { values: [], more: false });
  });

  it('drops a window whose folder changed, and keeps none for a folder without a trusted stamp', () => {
    const windows = new NameWindows<string>();
    windows.keep('f', 'old', '', pass(names, '', 4));
    assert.equal(windows.take('f', 'new', 'n003', 4), undefined);
    assert.equal(windows.take('f', 'old', 'n003', 4), undefined, 'gone for good');
    windows.keep('f', undefined, '', pass(names, '', 4));
    assert.equal(windows.take('f', 'old', 'n003', 4), undefined);
  });

  it('holds at most its number of windows, the oldest going first', () => {
    const windows = new NameWindows<string>(2);
    for (const f of ['a', 'b', 'c']) windows.keep(f, 's', '', pass(names, '', 1));
    assert.equal(windows.take('a', 's', '', 1), undefined);
    assert.deepEqual(windows.take('c', 's', '', 1)?.values, ['n000']);
  });

  it('holds at most its bytes of names, and keeps no window larger than that', () => {
    // 32 names of 4 characters: 32 × (96 + 8) = 3,328 bytes as counted
    const windows = new NameWindows<string>(8, 8000);
    windows.keep('a', 's', '', pass(names, '', 4));
    windows.keep('b', 's', '', pass(names, '', 4));
    windows.keep('c', 's', '', pass(names, '', 4)); // a third does not fit: the oldest goes
    assert.equal(windows.take('a', 's', '', 1), undefined);
    assert.deepEqual(windows.take('b', 's', '', 1)?.values, ['n000']);
    assert.deepEqual(windows.take('c', 's', '', 1)?.values, ['n000']);
    const tight = new NameWindows<string>(8, 3000);
    tight.keep('a', 's', '', pass(names, '', 4));
    assert.equal(tight.take('a', 's', '', 1), undefined, 'too large to keep at all');
  });

  it('trusts a folder\'s stamp only when its times are a second older than the read', () => {
    const second = 1_000_000_000n;
    const now = 1_800_000_000_000;
    const at = (ms: number): bigint => BigInt(ms) * 1_000_000n;
    assert.equal(folderStamp({ ino: 7n, mtimeNs: at(now - 5000), ctimeNs: at(now - 5000) }, now), `7:${at(now - 5000)}:${at(now - 5000)}`);
    assert.equal(folderStamp({ ino: 7n, mtimeNs: at(now) - second + 1n, ctimeNs: at(now - 5000) }, now), undefined, 'changed within the last second');
    assert.equal(folderStamp({ ino: 7n, mtimeNs: at(now - 5000), ctimeNs: at(now - 10) }, now), undefined, 'ctime recent');
  });
});

describe('paged listing of a quiet folder through the store (windows in use)', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
  });

  async function quietStore(files: number): Promise<{ store: Store; folder: string }> {
    const dir = await tempDir();
    dirs.push(dir);
    const store = await Store.open(path.join(dir, 'root'), { fsync: false });
    for (let i = 0; i < files; i++) {
      const upload = await store.beginUpload(`q/f${String(i).padStart(3, '0')}`);
      upload.write(Buffer.from(`file ${i}`));
      await upload.commit({ size: Buffer.byteLength(`file ${i}`) });
    }
    const folder = path.join(dir, 'root', 'q');
    // An hour old: the folder's stamp is trusted, so its listing's passes keep windows.
    const hourAgo = new Date(Date.now() - 3_600_000);
    await fs.utimes(folder, hourAgo, hourAgo);
    return { store, folder };
  }

  async function allPages(store: Store, limit: number, between?: (page: number) => Promise<void>): Promise<string[]> {
    const listed: string[] = [];
    for (let after = '', page = 0; ; page++) {
      const entries = await store.listPage('q', after, limit);
      listed.push(...entries.map((e) => e.name));
      if (entries.length < limit) return listed;
      after = entries[entries.length - 1]!.name;
      await between?.(page);
    }
  }

  it('lists every name once, in order, in pages served from windows', async () => {
    const { store } = await quietStore(150);
    const whole = (await store.list('q', false)).map((e) => e.name);
    assert.equal(whole.length, 150);
    for (const limit of [1, 4, 7, 150, 151]) assert.deepEqual(await allPages(store, limit), whole, `pages of ${limit}`);
    // `after` outside the folder's names: before all of them, or after all of them
    for (const after of ['', 'a', 'q', 'q/', 'q.', 'q/f']) assert.deepEqual((await store.listPage('q', after, 3)).map((e) => e.name), whole.slice(0, 3), `after "${after}"`);
    for (const after of ['q0', 'r', 'q/f149', 'q/g']) assert.deepEqual(await store.listPage('q', after, 3), [], `after "${after}"`);
    assert.deepEqual((await store.listPage('q', 'q/f0995', 2)).map((e) => e.name), ['q/f100', 'q/f101']);
    await store.close();
  });

  it('sees files added and removed between pages, although the folder was quiet when its window was read', async () => {
    // A change needs a second of ctime to be trusted again: sleep-free, it stays untrusted after.
    const { store, folder } = await quietStore(60);
    const listed = await allPages(store, 4, async (page) => {
      if (page !== 0) return;
      // after the first page (its pass kept a window of 32 names): one ahead goes, two come
      await fs.rm(path.join(folder, 'f010'));
      await fs.writeFile(path.join(folder, 'f010a'), 'new');
      await fs.writeFile(path.join(folder, 'f059z'), 'new');
    });
    const expected = Array.from({ length: 60 }, (_, i) => `q/f${String(i).padStart(3, '0')}`).filter((n) => n !== 'q/f010');
    expected.splice(10, 0, 'q/f010a');
    expected.push('q/f059z');
    assert.deepEqual(listed, expected);
    await store.close();
  });
});

describe('listing bounds in UTF-8 order for a page in ferry\'s (an S3 bucket\'s listing)', () => {
  // Characters where the orders or the folder keys differ: below '/', around U+D800, pairs.
  const alphabet = ['a', 'b', '-', '.', ' ', '!', '0', 'é', '\uD7FF', '\uE000', '\uFFFD', '\u{1F600}', '\u{10000}'];
  const random = (seed: number): (() => number) => () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const next = random(42);
  const leaf = (): string => Array.from({ length: 1 + Math.floor(next() * 4) }, () => alphabet[Math.floor(next() * alphabet.length)]).join('');
  const prefix = 'P/dir/';
  const names = [...new Set(Array.from({ length: 400 }, leaf))];
  // Each name a file (key: the name) or a folder (key: the name and '/').
  const entries = names.map((name, i) => ({ name: prefix + name, key: Buffer.from(prefix + name + (i % 3 === 0 ? '/' : ''), 'utf8') }));

  it('starts a listing after no key of a later name', () => {
    for (const cursor of entries) {
      const start = Buffer.from(utf8Bounds.startAfter(cursor.name), 'utf8');
      for (const e of entries) if (e.name > cursor.name) assert.ok(Buffer.compare(e.key, start) > 0, `${JSON.stringify(e.name)} listed after ${JSON.stringify(cursor.name)}`);
    }
  });

  it('is past every key of an earlier name once past pastAll', () => {
    for (const largest of entries) {
      const bound = utf8Bounds.pastAll(largest.name, prefix.length);
      for (const e of entries) if (e.name < largest.name) assert.ok(Buffer.compare(e.key, bound) <= 0, `${JSON.stringify(e.name)} (key ${e.key.toString('hex')}) before ${JSON.stringify(largest.name)}`);
    }
  });

  it('needs a bound of its own only where the orders differ', () => {
    assert.deepEqual(utf8Bounds.pastAll('P/dir/abc', 6), Buffer.from('P/dir/abc'));
    assert.deepEqual(utf8Bounds.pastAll('P/dir/ab-c', 6), Buffer.from('P/dir/ab/'), 'a folder "ab" is the key "ab/"');
    assert.deepEqual(utf8Bounds.pastAll('P/a b/x', 4), Buffer.from('P/a b/x'), 'the folder part is shared, never cut');
    assert.equal(utf8Bounds.startAfter('P/dir/ab\uE000c'), 'P/dir/ab');
  });
});
