import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, type Entry } from '../../src/index.js';
import { digestOf } from '../../src/io/digest.js';
import { WireErrorCode } from '../../src/errors.js';
import { ListFlag, MAX_LIST_PAGE } from '../../src/protocol/index.js';
import { RawPeer } from '../helpers/raw-peer.js';
import { startServer, type TestServer } from '../helpers/fixtures.js';

const names = (entries: Entry[]): string[] => entries.map((e) => e.name);

/** Issue 12: LIST with PAGE (protocol 7) lists a folder a page at a time. */
describe('paged listings (protocol 7)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
    const client = await connect({ port: server.address.port });
    // 25 files (two digits, so name order is number order) and 3 folders in "flat".
    await client.putBatch(Array.from({ length: 25 }, (_, i) => ({ name: `flat/f${String(i).padStart(2, '0')}`, data: Buffer.from(`file ${i}`) })));
    await client.putBatch(['flat/d1/x', 'flat/e5/x', 'flat/zz/x'].map((name) => ({ name, data: Buffer.from(name) })));
    await client.close();
    // Never listed: a link and a FIFO placed by hand.
    await fs.symlink('f00', path.join(server.root, 'flat', 'f03-link'));
  });
  after(() => server.stop());

  it('pages through a folder: the pages together are the whole listing, in its order, the last one short', async () => {
    const client = await connect({ port: server.address.port });
    const whole = await client.list('flat', { recursive: false });
    assert.equal(whole.length, 28);
    const pages: Entry[][] = [];
    for await (const page of client.listFolder('flat', { limit: 10 })) pages.push(page);
    assert.deepEqual(
      pages.map((p) => p.length),
      [10, 10, 8],
    );
    assert.deepEqual(pages.flat(), whole, 'same entries (sizes, digests, folders), same order');
    const second = await client.listPage('flat/', { after: whole[9]!.name, limit: 10 });
    assert.deepEqual(names(second), names(whole.slice(10, 20)));
    assert.deepEqual(await client.listPage('flat', { after: whole[27]!.name }), [], 'after the last name: an empty page');
    assert.deepEqual(names(await client.listPage('flat/f07', { limit: 5 })), ['flat/f07'], 'a file is listed alone');
    assert.deepEqual(await client.listPage('no-such-folder'), [], 'a folder that is not there is an empty page');
    await client.close();
  });

  it('a folder of exactly two pages ends with an empty third', async () => {
    const client = await connect({ port: server.address.port });
    await client.putBatch(Array.from({ length: 6 }, (_, i) => ({ name: `six/${i}`, data: Buffer.from('x') })));
    const pages: number[] = [];
    for await (const page of client.listFolder('six', { limit: 3 })) pages.push(page.length);
    assert.deepEqual(pages, [3, 3]);
    await client.close();
  });

  it('each entry there throughout is listed once when others come and go between pages', async () => {
    const client = await connect({ port: server.address.port });
    await client.putBatch(Array.from({ length: 9 }, (_, i) => ({ name: `moving/m${i}`, data: Buffer.from('x') })));
    const first = await client.listPage('moving', { limit: 4 });
    assert.deepEqual(names(first), ['moving/m0', 'moving/m1', 'moving/m2', 'moving/m3']);
    await client.remove('moving/m4'); // the next page's first entry goes
    await client.remove('moving/m1'); // an entry already listed goes
    await client.putBatch([
      { name: 'moving/m0a', data: Buffer.from('x') }, // comes before the cursor: not listed
      { name: 'moving/m9', data: Buffer.from('x') }, // comes after it: listed
    ]);
    const rest: string[] = [];
    for (let after = 'moving/m3'; ; ) {
      const page = await client.listPage('moving', { after, limit: 4 });
      rest.push(...names(page));
      if (page.length < 4) break;
      after = page[page.length - 1]!.name;
    }
    assert.deepEqual(rest, ['moving/m5', 'moving/m6', 'moving/m7', 'moving/m8', 'moving/m9']);
    await client.close();
  });

  it('refuses PAGE with RECURSIVE, a page of 0 or more than 4096, and PAGE on an older connection', async () => {
    const peer = await RawPeer.connect(server.address.port);
    const refusal = async (id: number, flags: number, limit: number): Promise<number> => {
      peer.send({ type: 'LIST', id, prefix: 'flat', flags, after: '', limit });
      const reply = await peer.waitFor((m) => m.type === 'ERROR' && m.id === id);
      assert.ok(reply.type === 'ERROR');
      return reply.code;
    };
    assert.equal(await refusal(1, ListFlag.PAGE | ListFlag.RECURSIVE, 10), WireErrorCode.UNSUPPORTED);
    assert.equal(await refusal(2, ListFlag.PAGE, 0), WireErrorCode.PROTOCOL);
    assert.equal(await refusal(3, ListFlag.PAGE, MAX_LIST_PAGE + 1), WireErrorCode.PROTOCOL);
    // The connection is still usable: a page of the largest size.
    peer.send({ type: 'LIST', id: 4, prefix: 'flat', flags: ListFlag.PAGE, after: '', limit: MAX_LIST_PAGE });
    const page = await peer.waitFor((m) => m.type === 'ENTRIES' && m.id === 4);
    assert.ok(page.type === 'ENTRIES' && page.entries.length === 28 && !page.more);
    peer.destroy();

    const v6 = await RawPeer.connect(server.address.port, { version: 6 });
    v6.send({ type: 'LIST', id: 1, prefix: 'flat', flags: ListFlag.PAGE, after: '', limit: 10 });
    const old = await v6.waitFor((m) => m.type === 'ERROR' && m.id === 1);
    assert.ok(old.type === 'ERROR' && old.code === WireErrorCode.UNSUPPORTED);
    v6.destroy();

    const client = await connect({ port: server.address.port });
    await assert.rejects(client.listPage('flat', { limit: 0 }), RangeError);
    await assert.rejects(client.listPage('flat', { limit: MAX_LIST_PAGE + 1 }), RangeError);
    await client.close();
  });
});

/**
 * A folder large enough that the server indexes its digest log (over 512 KiB: ~4,400 files named so)
 * and, quiet, keeps windows of its names between pages: what is listed and fetched is what
 * was stored, after files were replaced and removed, through a real server.
 */
describe('a folder of 4,500 files: indexed digest log and listing windows, end to end', () => {
  let server: TestServer;
  const count = 4500;
  const name = (i: number): string => `big/file-number-${String(i).padStart(5, '0')}.bin`;
  const contents = new Map<string, Buffer>();
  const tampered = [7, 100, 1999, 3998];

  before(async () => {
    server = await startServer();
    const client = await connect({ port: server.address.port });
    for (let start = 0; start < count; start += 250) {
      const files = Array.from({ length: 250 }, (_, k) => ({ name: name(start + k), data: Buffer.from(`file ${start + k} `.repeat(1 + ((start + k) % 7))) }));
      for (const f of files) contents.set(f.name, f.data);
      await client.putBatch(files);
    }
    // Replaced and removed after the first records: the log's last line for a name must win.
    for (const i of [7, 1999, 3998]) {
      const data = Buffer.from(`replaced ${i}`);
      contents.set(name(i), data);
      await client.putBatch([{ name: name(i), data }], { overwrite: true });
    }
    for (const i of [8, 2000]) {
      await client.remove(name(i));
      contents.delete(name(i));
    }
    await client.close();
    const key = createHash('sha256').update('big').digest('hex');
    const { size } = await fs.stat(path.join(server.root, '.ferry', 'meta', key.slice(0, 2), `${key}.log`));
    assert.ok(size >= 512 * 1024, `the folder's digest log is ${size} bytes: indexed from 512 KiB`);
    // Bytes changed behind the server's back, size, inode and time kept: listed with the
    // digest of what was stored only if the server answers from its records (the last line
    // for each name), not by hashing the files again.
    for (const i of tampered) {
      const file = path.join(server.root, name(i));
      const { mtimeMs } = await fs.stat(file);
      await fs.writeFile(file, Buffer.alloc(contents.get(name(i))!.length, 0x2a), { flag: 'r+' });
      const sameMs = (Math.trunc(mtimeMs) + 0.5) / 1000;
      await fs.utimes(file, sameMs, sameMs);
    }
    // Quiet for an hour: the listing's passes keep windows.
    const hourAgo = new Date(Date.now() - 3_600_000);
    await fs.utimes(path.join(server.root, 'big'), hourAgo, hourAgo);
  });
  after(() => server.stop());

  it('lists every file once with its recorded digest, and fetches them', async () => {
    const client = await connect({ port: server.address.port });
    const listed: Entry[] = [];
    for await (const page of client.listFolder('big', { limit: 500 })) listed.push(...page);
    assert.deepEqual(
      listed.map((e) => e.name),
      [...contents.keys()].sort(),
    );
    for (const entry of listed) assert.equal(entry.digest, digestOf(entry.algorithm, contents.get(entry.name)!).toString('hex'), entry.name);
    const untouched = listed.filter((e) => !tampered.some((i) => name(i) === e.name)).slice(0, 256);
    const fetched = await client.getBatch(untouched.map((e) => e.name));
    for (const [i, result] of fetched.entries()) assert.ok(result.status === 'file' && result.data.equals(contents.get(untouched[i]!.name)!), untouched[i]!.name);
    await client.close();
  });
});
