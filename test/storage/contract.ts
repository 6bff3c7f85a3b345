import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FerryError } from '../../src/errors.js';
import { digestOf, EMPTY_DIGEST } from '../../src/io/digest.js';
import { readRange, type StoreBackend, type StoreUpload } from '../../src/storage/backend.js';
import { readSmallFiles } from '../../src/storage/read-batch.js';
import type { StoredEntry, UploadOptions } from '../../src/storage/types.js';
import { randomData } from '../helpers/fixtures.js';

/** A store to run the contract against, and how to dispose of it. */
export interface ContractSubject {
  store: StoreBackend;
  /** A size that is "large" for this backend (S3: more than one part). */
  largeSize: number;
  cleanup(): Promise<void>;
}

async function writeAll(upload: StoreUpload, data: Buffer): Promise<void> {
  for (let at = 0; at < data.length; at += 256 * 1024) {
    if (!upload.write(data.subarray(at, at + 256 * 1024))) await new Promise<void>((resolve) => upload.sink.onDrain(resolve));
  }
}

async function store(subject: ContractSubject, name: string, data: Buffer, options: UploadOptions = {}): Promise<void> {
  const upload = await subject.store.beginUpload(name, { size: data.length, ...options });
  await writeAll(upload, data);
  await upload.commit({ size: data.length, digest: digestOf(upload.algorithm, data) });
}

async function readAll(subject: ContractSubject, name: string, start = 0): Promise<Buffer> {
  const opened = await subject.store.openRead(name);
  const chunks: Buffer[] = [];
  if (opened.size > start) for await (const chunk of readRange(opened, start, opened.size - 1, 64 * 1024)) chunks.push(chunk as Buffer);
  else await (opened.handle ? opened.handle.close() : opened.close());
  return Buffer.concat(chunks);
}

async function rejectsWith(work: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(work, (error: unknown) => error instanceof FerryError && error.code === code);
}

/**
 * The storage contract: what every backend (the local folder, S3) must do the same way,
 * through the StoreBackend interface only.
 */
export function storeContract(label: string, open: () => Promise<ContractSubject>, skip: string | false = false): void {
  describe(`storage contract: ${label}`, { skip }, () => {
    let subject: ContractSubject;
    before(async () => {
      subject = await open();
    });
    after(async () => {
      await subject?.cleanup();
    });

    it('stores a file, then stats and reads it with both digests', async () => {
      const data = randomData(100_000);
      await store(subject, 'docs/a.bin', data, { algorithm: 'blake3' });
      const sha = await subject.store.stat('docs/a.bin', 'sha256');
      const b3 = await subject.store.stat('docs/a.bin', 'blake3');
      assert.equal(sha.size, data.length);
      assert.deepEqual(sha.digest, digestOf('sha256', data));
      assert.deepEqual(b3.digest, digestOf('blake3', data));
      assert.ok((await readAll(subject, 'docs/a.bin')).equals(data));
      assert.ok((await readAll(subject, 'docs/a.bin', 99_000)).equals(data.subarray(99_000)));
      assert.equal(await subject.store.exists('docs/a.bin'), true);
      assert.equal(await subject.store.exists('docs'), true);
      assert.equal(await subject.store.exists('nothing'), false);
    });

    it('stores an empty file', async () => {
      await store(subject, 'empty', Buffer.alloc(0));
      const entry = await subject.store.stat('empty');
      assert.equal(entry.size, 0);
      assert.deepEqual(entry.digest, EMPTY_DIGEST.sha256);
      assert.equal((await readAll(subject, 'empty')).length, 0);
    });

    it('stores a large file in parts and reads ranges of it', async () => {
      const data = randomData(subject.largeSize);
      await store(subject, 'large.bin', data);
      const entry = await subject.store.stat('large.bin', 'blake3');
      assert.deepEqual(entry.digest, digestOf('blake3', data));
      assert.ok((await readAll(subject, 'large.bin')).equals(data));
      const offset = data.length - 1_000_003;
      assert.ok((await readAll(subject, 'large.bin', offset)).equals(data.subarray(offset)));
      const prefix = await subject.store.hashPrefix('large.bin', 1_000_000);
      assert.deepEqual(prefix, { offset: 1_000_000, digest: digestOf('sha256', data.subarray(0, 1_000_000)) });
    });

    it('never clobbers: EXISTS, unless overwrite (replaces) or rename ("name (1).ext")', async () => {
      await store(subject, 'nc/x.txt', Buffer.from('one'));
      await rejectsWith(subject.store.checkUpload('nc/x.txt', { size: 3 }), 'EXISTS');
      await rejectsWith(store(subject, 'nc/x.txt', Buffer.from('two')), 'EXISTS');
      await store(subject, 'nc/x.txt', Buffer.from('three'), { overwrite: true });
      assert.equal((await readAll(subject, 'nc/x.txt')).toString(), 'three');
      const upload = await subject.store.beginUpload('nc/x.txt', { size: 4, rename: true });
      upload.write(Buffer.from('four'));
      const entry = await upload.commit({ size: 4, digest: digestOf('sha256', Buffer.from('four')) });
      assert.equal(entry.name, 'nc/x (1).txt');
    });

    it('of concurrent creators of one name exactly one wins', async () => {
      const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => store(subject, 'race.txt', Buffer.from(`writer ${i}`))));
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as FerryError).code, 'EXISTS');
    });

    it('publishes nothing on a wrong digest, a wrong size or an abort', async () => {
      const data = randomData(5000);
      let upload = await subject.store.beginUpload('bad/digest', { size: data.length });
      upload.write(data);
      await rejectsWith(upload.commit({ size: data.length, digest: digestOf('sha256', Buffer.from('other')) }), 'INTEGRITY');
      upload = await subject.store.beginUpload('bad/size', {});
      upload.write(data);
      await rejectsWith(upload.commit({ size: data.length + 1 }), 'INTEGRITY');
      upload = await subject.store.beginUpload('bad/aborted', { size: data.length });
      upload.write(data);
      await upload.abort();
      for (const name of ['bad/digest', 'bad/size', 'bad/aborted']) assert.equal(await subject.store.exists(name), false, name);
    });

    it('lists folders and files, recursively or not, sorted', async () => {
      for (const name of ['l/b.txt', 'l/a-b.txt', 'l/a/x.txt', 'l/a/y/z.txt']) await store(subject, name, Buffer.from(name));
      const flat = await subject.store.list('l', false);
      assert.deepEqual(flat.map((e) => `${e.kind}:${e.name}`), ['folder:l/a', 'file:l/a-b.txt', 'file:l/b.txt']);
      const deep = await subject.store.list('l/', true, { algorithm: 'blake3' });
      assert.deepEqual(deep.map((e) => e.name), ['l/a-b.txt', 'l/a/x.txt', 'l/a/y/z.txt', 'l/b.txt']);
      assert.deepEqual(deep[1]!.digest, digestOf('blake3', Buffer.from('l/a/x.txt')));
      assert.deepEqual((await subject.store.list('l/b.txt', false)).map((e) => e.name), ['l/b.txt']);
      assert.deepEqual(await subject.store.list('l/none', true), []);
      await rejectsWith(subject.store.list('l/none', true, { missing: 'error' }), 'NOT_FOUND');
      const top = await subject.store.list('', false);
      assert.ok(!top.some((e) => e.name.startsWith('.ferry')), 'the server state is never listed');
    });

    it('removes files and folders', async () => {
      for (const name of ['r/1', 'r/2', 'r/s/3']) await store(subject, name, Buffer.from(name));
      await store(subject, 'r-big', randomData(subject.largeSize));
      await rejectsWith(subject.store.remove('r'), 'CONFLICT');
      await rejectsWith(subject.store.remove('r/none'), 'NOT_FOUND');
      await subject.store.remove('r/1');
      assert.equal(await subject.store.exists('r/1'), false);
      assert.equal(await subject.store.removeTree('r'), 2);
      assert.equal(await subject.store.exists('r'), false);
      await rejectsWith(subject.store.removeTree('r'), 'NOT_FOUND');
      await subject.store.remove('r-big');
      await rejectsWith(subject.store.stat('r-big'), 'NOT_FOUND');
    });

    it('lists a folder a page at a time: the pages are the listing, in order, the last short', async () => {
      for (const name of ['p/b.txt', 'p/a-b.txt', 'p/a/x.txt', 'p/c', 'p/d/e', 'p/f']) await store(subject, name, Buffer.from(name));
      const whole = await subject.store.list('p', false, { algorithm: 'blake3' });
      assert.equal(whole.length, 6);
      const pages: StoredEntry[][] = [];
      for (let after = ''; ; ) {
        const page = await subject.store.listPage('p/', after, 4, { algorithm: 'blake3' });
        pages.push(page);
        if (page.length < 4) break;
        after = page[page.length - 1]!.name;
      }
      assert.deepEqual(
        pages.map((p) => p.length),
        [4, 2],
      );
      assert.deepEqual(pages.flat(), whole, 'files with their sizes and digests, folders, in the listing order');
      assert.deepEqual((await subject.store.listPage('p', 'p/a-b.txt', 2)).map((e) => e.name), ['p/b.txt', 'p/c']);
      assert.deepEqual((await subject.store.listPage('p/c', '', 10)).map((e) => e.name), ['p/c'], 'a file is listed alone');
      assert.deepEqual(await subject.store.listPage('p/c', 'p/c', 10), []);
      assert.deepEqual(await subject.store.listPage('p/none', '', 10), []);
      const top = await subject.store.listPage('', '', 4096);
      assert.ok(!top.some((e) => e.name.startsWith('.ferry')), 'the server state is never listed');
    });

    it('pages through names whose order differs in UTF-8 and as folders (sub/ after sub-x)', async () => {
      // A folder "sub" is the key "sub/", after "sub-x" and "sub.txt" in a bucket's (UTF-8) order
      // but before them in ferry's; U+E000 sorts after a surrogate pair in UTF-16, before it in UTF-8.
      const leaves = ['sub-x', 'sub.txt', 'sub 2', 'sub!', 'subway', 'su', 'a', '\uE000x', '\u{1F600}', '\u{1F600}-b', 'é', 'z'];
      const folders = ['sub', 'sub-x.d', '\u{1F600}f', 'zz'];
      for (const leaf of leaves) await store(subject, `order/${leaf}`, Buffer.from(leaf));
      for (const folder of folders) await store(subject, `order/${folder}/inside`, Buffer.from(folder));
      const whole = (await subject.store.list('order', false)).map((e) => `${e.kind}:${e.name}`);
      assert.equal(whole.length, leaves.length + folders.length);
      for (const limit of [1, 2, 3, 5]) {
        const paged: string[] = [];
        for (let after = ''; ; ) {
          const page = await subject.store.listPage('order', after, limit);
          paged.push(...page.map((e) => `${e.kind}:${e.name}`));
          if (page.length < limit) break;
          after = page[page.length - 1]!.name;
        }
        assert.deepEqual(paged, whole, `pages of ${limit}`);
      }
    });

    it('makes empty folders', async () => {
      assert.equal(await subject.store.makeFolder('made/here'), true);
      assert.equal(await subject.store.makeFolder('made/here'), false);
      assert.deepEqual((await subject.store.list('made', false)).map((e) => `${e.kind}:${e.name}`), ['folder:made/here']);
      await rejectsWith(subject.store.stat('made/here'), 'CONFLICT');
    });

    it('keeps an interrupted upload and resumes it, verifying the whole file', async () => {
      const data = randomData(subject.largeSize);
      const cut = data.length - 1000;
      const first = await subject.store.beginUpload('resume.bin', { size: data.length, resume: true, algorithm: 'blake3' });
      assert.equal(first.offset, 0);
      await writeAll(first, data.subarray(0, cut));
      await first.abort(true);
      const probe = await subject.store.probeUpload('resume.bin', data.length, 'blake3');
      assert.ok(probe.offset > 0 && probe.offset <= cut, `kept ${probe.offset} of ${cut}`);
      assert.deepEqual(probe.digest, digestOf('blake3', data.subarray(0, probe.offset)));
      assert.equal(subject.store.partials.sizeOf('resume.bin', data.length), probe.offset);
      assert.equal(await subject.store.exists('resume.bin'), false, 'a partial is never visible');
      const second = await subject.store.beginUpload('resume.bin', { size: data.length, resume: true, algorithm: 'blake3' });
      assert.equal(second.offset, probe.offset);
      assert.deepEqual(second.prefixDigest, probe.digest);
      await writeAll(second, data.subarray(second.offset));
      const entry = await second.commit({ size: data.length, digest: digestOf('blake3', data) });
      assert.deepEqual(entry.digest, digestOf('blake3', data));
      assert.ok((await readAll(subject, 'resume.bin')).equals(data));
      assert.equal(subject.store.partials.sizeOf('resume.bin', data.length), 0);
    });

    it('refuses a resumed upload whose bytes do not match at the end', async () => {
      const data = randomData(subject.largeSize);
      const first = await subject.store.beginUpload('resume-bad.bin', { size: data.length, resume: true });
      await writeAll(first, data.subarray(0, data.length - 10));
      await first.abort(true);
      const second = await subject.store.beginUpload('resume-bad.bin', { size: data.length, resume: true });
      assert.ok(second.offset > 0);
      await writeAll(second, randomData(data.length - second.offset));
      await rejectsWith(second.commit({ size: data.length, digest: digestOf('sha256', data) }), 'INTEGRITY');
      assert.equal(await subject.store.exists('resume-bad.bin'), false);
    });

    it('refuses a file under a file, and a file over a folder', async () => {
      await store(subject, 'way', Buffer.from('a file'));
      await rejectsWith(store(subject, 'way/below', Buffer.from('x')), 'CONFLICT');
      await rejectsWith(subject.store.checkUpload('way/below', { size: 1 }), 'CONFLICT');
      await store(subject, 'dir/inside', Buffer.from('x'));
      await rejectsWith(store(subject, 'dir', Buffer.from('x')), 'EXISTS');
      await rejectsWith(subject.store.checkUpload('dir', { size: 1 }), 'EXISTS');
      assert.equal((await subject.store.stat('way')).size, 6);
    });

    it('stores a batch of small files, each on its own: stored, identical, refused', async () => {
      const first = randomData(1000);
      const second = randomData(2000);
      await store(subject, 'batch/taken.bin', randomData(10));
      const outcomes = await subject.store.storeBatch(
        [
          { name: 'batch/one.bin', data: first, digest: digestOf('sha256', first) },
          { name: 'batch/taken.bin', data: second, digest: digestOf('sha256', second) }, // no-clobber
          { name: 'batch/bad.bin', data: second, digest: digestOf('sha256', first) }, // wrong digest
          { name: 'batch/two.bin', data: second, digest: digestOf('sha256', second), mtimeMs: 1_700_000_000_000 },
        ],
        { algorithm: 'sha256' },
      );
      assert.deepEqual(
        outcomes.map((o) => o.status),
        ['stored', 'refused', 'refused', 'stored'],
      );
      const clash = outcomes[1]!;
      assert.equal(clash.status === 'refused' && (clash.error as FerryError).code, 'EXISTS');
      assert.ok((await readAll(subject, 'batch/one.bin')).equals(first));
      assert.ok((await readAll(subject, 'batch/two.bin')).equals(second));
      assert.equal((await subject.store.stat('batch/two.bin')).mtimeMs, 1_700_000_000_000);
      assert.equal(await subject.store.exists('batch/bad.bin'), false, 'a file that fails verification is not stored');
      const again = await subject.store.storeBatch([{ name: 'batch/one.bin', data: first, digest: digestOf('sha256', first) }], { algorithm: 'sha256', skipIdentical: true });
      assert.equal(again[0]!.status, 'identical');
    });

    it('reads a batch of small files (GET_BATCH), each verified: file, large, missing, folder, bad name', async () => {
      const small = randomData(3000);
      const large = randomData(5000);
      await store(subject, 'rb/small.bin', small);
      await store(subject, 'rb/empty', Buffer.alloc(0));
      await store(subject, 'rb/large.bin', large);
      await store(subject, 'rb/dir/x', Buffer.from('x'));
      const outcomes = await readSmallFiles(subject.store, ['rb/small.bin', 'rb/empty', 'rb/large.bin', 'rb/missing', 'rb/dir', '../up', 'rb/small.bin'], 'blake3', 4096);
      const shown = outcomes.map((o) => (o.read ? o.read.status : o.error instanceof FerryError ? o.error.code : String(o.error)));
      assert.deepEqual(shown, ['file', 'file', 'large', 'NOT_FOUND', 'CONFLICT', 'BAD_NAME', 'file']);
      const first = outcomes[0]!.read;
      assert.ok(first?.status === 'file' && first.data.equals(small) && first.digest.equals(digestOf('blake3', small)));
      assert.ok(outcomes[1]!.read?.status === 'file' && outcomes[1]!.read.data.length === 0);
      assert.ok(outcomes[2]!.read?.status === 'large' && outcomes[2]!.read.size === large.length);
    });

    it('refuses bad names', async () => {
      await rejectsWith(subject.store.beginUpload('../x', {}), 'BAD_NAME');
      await rejectsWith(subject.store.beginUpload('.ferry/x', {}), 'BAD_NAME');
      await rejectsWith(subject.store.stat('a//b'), 'BAD_NAME');
    });
  });
}
