import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createHash } from 'node:crypto';
import { FerryError } from '../../src/errors.js';
import { digestOf } from '../../src/io/digest.js';
import { mapFsError, Store } from '../../src/storage/store.js';
import { BAD_NAMES } from '../helpers/bad-names.js';
import { randomData, sha256, tempDir, temporaries, visibleTree } from '../helpers/fixtures.js';

async function storeBytes(store: Store, name: string, data: Buffer, options = {}): Promise<void> {
  const upload = await store.beginUpload(name, options);
  upload.write(data);
  await upload.commit({ size: data.length });
}

for (const pinFolders of [true, false]) describe(`store (${pinFolders ? 'folders pinned through /proc/self/fd' : 'portable lstat walk'})`, () => {
  let root: string;
  let outside: string;
  let store: Store;

  before(async () => {
    const parent = await tempDir();
    root = path.join(parent, 'root');
    outside = path.join(parent, 'outside');
    await fs.mkdir(outside);
    await fs.writeFile(path.join(outside, 'sentinel'), 'keep');
    store = await Store.open(root, { pinFolders });
  });
  after(async () => {
    await store.close();
    await fs.rm(path.dirname(root), { recursive: true, force: true });
  });

  it('refuses a name of 2,048 components before creating anything (issue #9)', async () => {
    const beforeTree = await visibleTree(root);
    const deep = `${'a/'.repeat(2047)}a`;
    await assert.rejects(store.beginUpload(deep), (e: FerryError) => e.code === 'BAD_NAME' && /more than 64 path components/.test(e.message));
    await assert.rejects(store.checkUpload(deep, {}), (e: FerryError) => e.code === 'BAD_NAME');
    assert.deepEqual(await visibleTree(root), beforeTree);
    assert.deepEqual(await temporaries(root), []);
  });

  it('refuses a name too long under this root before creating anything (issue #9)', async () => {
    const beforeTree = await visibleTree(root);
    const long = Array.from({ length: 16 }, (_, i) => String(i).padEnd(255, 'x')).join('/'); // 4095 bytes: a valid name
    await assert.rejects(store.beginUpload(long), (e: FerryError) => e.code === 'BAD_NAME' && /longer than 4095 bytes/.test(e.message));
    assert.deepEqual(await visibleTree(root), beforeTree);
    assert.deepEqual(await temporaries(root), []);
  });

  it('refuses .ferry in any letter case', async () => {
    for (const name of ['.FERRY/x', '.Ferry', '.fERRY/tmp/y']) {
      await assert.rejects(store.beginUpload(name), (e: FerryError) => e.code === 'BAD_NAME', name);
    }
    assert.ok(!(await visibleTree(root)).some((p) => p.toLowerCase().startsWith('.ferry')));
  });

  it(`reports which walk it uses`, () => {
    assert.equal(store.pinned, pinFolders && process.platform === 'linux');
  });

  it('creates the root and its state folder', async () => {
    assert.ok((await fs.stat(path.join(root, '.ferry', 'tmp'))).isDirectory());
  });

  it('stores, stats and lists with the sha256 kept', async () => {
    const data = randomData(1000);
    await storeBytes(store, 'dir/sub/file.bin', data);
    const entry = await store.stat('dir/sub/file.bin');
    assert.equal(entry.size, 1000);
    assert.equal(entry.digest.toString('hex'), sha256(data));
    const all = await store.list('', true);
    assert.ok(all.some((e) => e.name === 'dir/sub/file.bin'));
    const top = await store.list('', false);
    assert.deepEqual(top.filter((e) => e.name === 'dir').map((e) => e.kind), ['folder']);
    assert.deepEqual((await store.list('dir/sub/', true)).map((e) => e.name), ['dir/sub/file.bin']);
    assert.deepEqual(await store.list('nope', true), []);
  });

  it('refuses every bad name with BAD_NAME and creates nothing', async () => {
    const beforeTree = await visibleTree(root);
    for (const [name] of BAD_NAMES) {
      await assert.rejects(store.beginUpload(name), (e: FerryError) => e.code === 'BAD_NAME', JSON.stringify(name));
      await assert.rejects(store.openRead(name), (e: FerryError) => e.code === 'BAD_NAME');
      await assert.rejects(store.remove(name), (e: FerryError) => e.code === 'BAD_NAME');
    }
    assert.deepEqual(await visibleTree(root), beforeTree);
    assert.deepEqual(await temporaries(root), []);
    assert.equal(await fs.readFile(path.join(outside, 'sentinel'), 'utf8'), 'keep');
  });

  it('never follows a symlink planted in the root', async () => {
    await fs.symlink(outside, path.join(root, 'escape'));
    await fs.symlink(path.join(outside, 'sentinel'), path.join(root, 'link.txt'));
    await assert.rejects(store.openRead('escape/sentinel'), (e: FerryError) => e.code === 'BAD_NAME');
    await assert.rejects(store.openRead('link.txt'), (e: FerryError) => e.code === 'NOT_FOUND');
    await assert.rejects(storeBytes(store, 'escape/new.txt', Buffer.from('x')), (e: FerryError) => e.code === 'BAD_NAME');
    await assert.rejects(store.remove('link.txt'), (e: FerryError) => e.code === 'NOT_FOUND');
    assert.ok(!(await store.list('', true)).some((e) => e.name.startsWith('escape') || e.name === 'link.txt'));
    assert.deepEqual(await fs.readdir(outside), ['sentinel']);
    assert.equal(await fs.readFile(path.join(outside, 'sentinel'), 'utf8'), 'keep');
    await fs.rm(path.join(root, 'escape'));
    await fs.rm(path.join(root, 'link.txt'));
  });

  it('does not overwrite unless asked, and renames on request', async () => {
    await storeBytes(store, 'same.txt', Buffer.from('one'));
    await assert.rejects(storeBytes(store, 'same.txt', Buffer.from('two')), (e: FerryError) => e.code === 'EXISTS');
    assert.equal(await fs.readFile(path.join(root, 'same.txt'), 'utf8'), 'one');
    await storeBytes(store, 'same.txt', Buffer.from('two'), { overwrite: true });
    assert.equal(await fs.readFile(path.join(root, 'same.txt'), 'utf8'), 'two');
    assert.equal((await store.stat('same.txt')).digest.toString('hex'), sha256(Buffer.from('two')));
    const upload = await store.beginUpload('same.txt', { rename: true });
    upload.write(Buffer.from('three'));
    const entry = await upload.commit({});
    assert.equal(entry.name, 'same (1).txt');
  });

  it('lets exactly one of two racing uploads to a new name win, whole', async () => {
    const a = randomData(200_000);
    const b = randomData(200_000);
    const results = await Promise.allSettled([storeBytes(store, 'race.bin', a), storeBytes(store, 'race.bin', b)]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    const stored = await fs.readFile(path.join(root, 'race.bin'));
    assert.ok(stored.equals(a) || stored.equals(b));
    assert.deepEqual(await temporaries(root), []);
  });

  it('refuses a size or digest mismatch and leaves no trace', async () => {
    const upload = await store.beginUpload('short.bin', { size: 10 });
    upload.write(Buffer.from('12345'));
    await assert.rejects(upload.commit({ size: 10 }), (e: FerryError) => e.code === 'INTEGRITY');
    const upload2 = await store.beginUpload('bad-sha.bin');
    upload2.write(Buffer.from('12345'));
    await assert.rejects(upload2.commit({ digest: Buffer.alloc(32) }), (e: FerryError) => e.code === 'INTEGRITY');
    assert.ok(!(await visibleTree(root)).some((p) => p.startsWith('short') || p.startsWith('bad-sha')));
    assert.deepEqual(await temporaries(root), []);
  });

  it('refuses files over the size limit', async () => {
    const small = await Store.open(await tempDir(), { maxFileSize: 10, pinFolders });
    await assert.rejects(small.beginUpload('big', { size: 11 }), (e: FerryError) => e.code === 'TOO_LARGE');
    const upload = await small.beginUpload('big');
    assert.throws(() => upload.write(Buffer.alloc(11)), (e: FerryError) => e.code === 'TOO_LARGE');
    await upload.abort();
    assert.deepEqual(await temporaries(small.root), []);
  });

  it('rehashes a file changed behind its back instead of serving a stale digest', async () => {
    await storeBytes(store, 'changed.txt', Buffer.from('original'));
    await new Promise((r) => setTimeout(r, 5));
    await fs.writeFile(path.join(root, 'changed.txt'), 'edited by hand');
    assert.equal((await store.stat('changed.txt')).digest.toString('hex'), sha256(Buffer.from('edited by hand')));
  });

  it('keeps a digest per algorithm: the upload\'s, and others computed once on demand', async () => {
    const data = randomData(70_000);
    const upload = await store.beginUpload('algos.bin', { algorithm: 'blake3' });
    upload.write(Buffer.from(data));
    const entry = await upload.commit({ size: data.length, digest: digestOf('blake3', data) });
    assert.ok(entry.digest.equals(digestOf('blake3', data)));
    assert.equal((await store.stat('algos.bin', 'sha256')).digest.toString('hex'), sha256(data));
    // The root folder's digest log: its last line for the file holds both digests.
    const key = createHash('sha256').update('').digest('hex');
    const log = await fs.readFile(path.join(root, '.ferry', 'meta', key.slice(0, 2), `${key}.log`), 'utf8');
    const record = log.split('\n').filter((line) => line.endsWith('\t"algos.bin"')).at(-1) ?? '';
    assert.match(record, new RegExp(`blake3:${digestOf('blake3', data).toString('hex')}`));
    assert.match(record, new RegExp(`sha256:${sha256(data)}`));
    // A wrong BLAKE3 digest is refused like a wrong SHA-256 one.
    const bad = await store.beginUpload('algos-bad.bin', { algorithm: 'blake3' });
    bad.write(Buffer.from(data));
    await assert.rejects(bad.commit({ size: data.length, digest: digestOf('sha256', data) }), (e: FerryError) => e.code === 'INTEGRITY');
  });

  it('reads digest records written by version 0.1 (a bare SHA-256 first)', async () => {
    // A file stored by 0.1: the file and its record file, and no line in a digest log.
    await fs.writeFile(path.join(root, 'old.txt'), 'from 0.1');
    const key = createHash('sha256').update('old.txt').digest('hex');
    const recordFile = path.join(root, '.ferry', 'meta', key.slice(0, 2), key);
    const stats = await fs.stat(path.join(root, 'old.txt'));
    // The old record claims a digest no file has: served as is, it proves the record was read.
    const claimed = 'ab'.repeat(32);
    await fs.mkdir(path.dirname(recordFile), { recursive: true });
    await fs.writeFile(recordFile, `${claimed} ${stats.size} ${Math.trunc(stats.mtimeMs)} ${stats.ino}`.padEnd(127) + '\n');
    assert.equal((await store.stat('old.txt', 'sha256')).digest.toString('hex'), claimed);
    assert.ok((await store.stat('old.txt', 'blake3')).digest.equals(digestOf('blake3', Buffer.from('from 0.1'))));
    assert.equal((await store.stat('old.txt', 'sha256')).digest.toString('hex'), claimed, 'adding BLAKE3 kept the SHA-256 digest');
  });

  it('removes files, prunes empty folders, and reports NOT_FOUND', async () => {
    await storeBytes(store, 'p/q/r.txt', Buffer.from('x'));
    await store.remove('p/q/r.txt');
    await assert.rejects(fs.stat(path.join(root, 'p')), { code: 'ENOENT' });
    await assert.rejects(store.remove('p/q/r.txt'), (e: FerryError) => e.code === 'NOT_FOUND');
    await assert.rejects(store.remove('dir'), (e: FerryError) => e.code === 'CONFLICT');
  });

  it('sweeps stale temporaries at startup', async () => {
    await fs.writeFile(path.join(root, '.ferry', 'tmp', 'stale.part'), 'left by a crash');
    const reopened = await Store.open(root, { pinFolders });
    assert.deepEqual(await temporaries(reopened.root), []);
    await reopened.close();
  });

  it('refuses every call once closed', async () => {
    const closing = await Store.open(await tempDir(), { pinFolders });
    await closing.close();
    await assert.rejects(closing.stat('x'), (e: FerryError) => e.code === 'CLOSED');
    await fs.rm(closing.root, { recursive: true, force: true });
  });
});

describe('mapFsError', () => {
  it('maps running out of file descriptors to BUSY', () => {
    for (const code of ['EMFILE', 'ENFILE']) {
      const mapped = mapFsError(Object.assign(new Error(code), { code })) as FerryError;
      assert.equal(mapped.code, 'BUSY');
      assert.equal(mapped.message, 'the server has too many files open: try again shortly');
    }
  });
});
