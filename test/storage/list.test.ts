import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { FerryError } from '../../src/errors.js';
import { Store, type StoredEntry } from '../../src/storage/store.js';
import { tempDir } from '../helpers/fixtures.js';

async function put(store: Store, name: string, text = name): Promise<void> {
  const upload = await store.beginUpload(name);
  upload.write(Buffer.from(text));
  await upload.commit({});
}

async function collect(stream: AsyncIterable<StoredEntry[]>): Promise<{ names: string[]; batches: number }> {
  const names: string[] = [];
  let batches = 0;
  for await (const batch of stream) {
    batches++;
    names.push(...batch.map((e) => e.name));
  }
  return { names, batches };
}

const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

describe('listings (issue #9)', () => {
  let store: Store;
  // Names where per-folder order and full-name order could disagree: "a-b" < "a/…" < "a0", "é".
  const names = ['a', 'a-b', 'a.b', 'a0', 'ab/x', 'b', 'a/b', 'a/c/d', 'a/c-d', 'a/c/e/f', 'é/x', 'z/z/z/z'];

  before(async () => {
    store = await Store.open(await tempDir(), { fsync: false });
    for (const name of names.filter((n) => n !== 'a')) await put(store, name);
    await put(store, 'top');
    for (let i = 0; i < 1200; i++) await put(store, `many/f${String(i).padStart(4, '0')}`);
  });
  after(async () => {
    const root = store.root;
    await store.close();
    await fs.rm(root, { recursive: true, force: true });
  });

  it('streams the same entries as list(), in full-name order, in batches', async () => {
    for (const [prefix, recursive] of [['', true], ['', false], ['a', true], ['a', false], ['many', true]] as const) {
      const listed = (await store.list(prefix, recursive)).map((e) => e.name);
      const { names: streamed, batches } = await collect(store.listStream(prefix, recursive));
      assert.deepEqual(streamed, listed, `${prefix} ${recursive}`);
      assert.deepEqual(listed, [...listed].sort(byCodeUnits), `sorted: ${prefix} ${recursive}`);
      if (prefix === 'many') assert.ok(batches >= 2, 'more than one batch');
    }
    const all = (await store.list('', true)).map((e) => e.name);
    assert.equal(all.length, names.length - 1 + 1 + 1200);
    assert.deepEqual(
      all.filter((n) => !n.startsWith('many/')),
      ['a-b', 'a.b', 'a/b', 'a/c-d', 'a/c/d', 'a/c/e/f', 'a0', 'ab/x', 'b', 'top', 'z/z/z/z', 'é/x'],
    );
  });

  it('treats the prefix as a folder, not a string prefix, with full names and trailing slashes dropped', async () => {
    assert.deepEqual((await store.list('a/', true)).map((e) => e.name), ['a/b', 'a/c-d', 'a/c/d', 'a/c/e/f']);
    assert.deepEqual((await store.list('a//', false)).map((e) => [e.name, e.kind]), [['a/b', 'file'], ['a/c', 'folder'], ['a/c-d', 'file']]);
    assert.deepEqual(await store.list('z/z', true).then((l) => l.map((e) => e.name)), ['z/z/z/z']);
    assert.deepEqual(await store.list('to', true), []); // "top" does not match the folder "to"
  });

  it('lists a file named by the prefix as just that file', async () => {
    for (const recursive of [true, false]) {
      const listed = await store.list('a/c/d', recursive);
      assert.deepEqual(listed.map((e) => [e.name, e.kind, e.size]), [['a/c/d', 'file', 5]]);
    }
  });

  it('answers a missing folder with an empty listing, or NOT_FOUND when asked to', async () => {
    assert.deepEqual(await store.list('nope', true), []);
    assert.deepEqual(await store.list('a/nope', false, { missing: 'empty' }), []);
    await assert.rejects(store.list('nope/deeper', true, { missing: 'error' }), (e: FerryError) => e.code === 'NOT_FOUND' && /no folder named "nope\/deeper"/.test(e.message));
    await assert.rejects(collect(store.listStream('nope', false, { missing: 'error' })), (e: FerryError) => e.code === 'NOT_FOUND');
  });
});
