import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from '../../src/index.js';
import { WireErrorCode } from '../../src/errors.js';
import { Decoder, encodeMessage, MAX_GET_BATCH_FILE, type Message } from '../../src/protocol/index.js';
import { runCli } from '../helpers/cli.js';
import { randomData, startServer, tempDir, treeOf, type TestServer } from '../helpers/fixtures.js';

/**
 * A real server behind a proxy that counts what clients ask for, and can play an older
 * server: with `maxVersion`, a HELLO above it gets VERSION and the client must ask again.
 */
async function startCountingProxy(
  target: number,
  maxVersion?: number,
  onFirstGetBatch?: (names: string[]) => Promise<void>,
): Promise<{ port: number; requests: Map<string, number>; close: () => Promise<void> }> {
  const requests = new Map<string, number>();
  /** With `onFirstGetBatch`: replies held (on every connection) from the first GET_BATCH until it is done. */
  let held: { client: net.Socket; chunk: Buffer }[] | undefined;
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((client) => {
    sockets.add(client);
    client.on('error', () => undefined);
    client.pause();
    const upstream = net.connect(target, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    let refused = false;
    const decoder = new Decoder('server', {
      message: (m: Message) => {
        requests.set(m.type, (requests.get(m.type) ?? 0) + 1);
        if (m.type === 'GET_BATCH' && onFirstGetBatch !== undefined) {
          const hook = onFirstGetBatch;
          onFirstGetBatch = undefined;
          held = [];
          void hook(m.names).then(() => {
            for (const { client, chunk } of held!) client.write(chunk);
            held = undefined;
          });
        }
        if (m.type === 'HELLO' && maxVersion !== undefined && m.version > maxVersion) {
          refused = true;
          client.end(encodeMessage({ type: 'ERROR', id: 0, code: WireErrorCode.VERSION, message: `speaks 1 to ${maxVersion}` }));
        }
      },
      body: () => undefined,
      bodyEnd: () => undefined,
    });
    client.on('data', (chunk: Buffer) => {
      decoder.push(chunk);
      if (!refused) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => (held ? held.push({ client, chunk }) : client.write(chunk)));
    upstream.on('connect', () => client.resume());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    port: (proxy.address() as net.AddressInfo).port,
    requests,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => proxy.close(resolve));
    },
  };
}

async function sameTrees(a: string, b: string): Promise<void> {
  const files = await treeOf(a);
  assert.deepEqual(await treeOf(b), files);
  for (const rel of files) {
    if (rel.endsWith('/')) continue;
    assert.ok((await fs.readFile(path.join(a, rel))).equals(await fs.readFile(path.join(b, rel))), rel);
  }
}

/** Issue 12: `get -r` fetches small files in GET_BATCH requests (protocol 6). */
describe('ferry get -r with batches', () => {
  let server: TestServer;
  let work: string;
  let source: string;
  before(async () => {
    server = await startServer();
    work = await tempDir('ferry-getbatch-');
    // 300 small files in 6 folders, an empty one, and three too large for a batch.
    source = path.join(work, 'src');
    const client = await connect({ port: server.address.port });
    const files: { rel: string; data: Buffer }[] = [];
    for (let i = 0; i < 300; i++) files.push({ rel: `d${i % 6}/sub${i % 2}/f${i}.txt`, data: randomData((i * 97) % 5000) });
    files.push({ rel: 'empty', data: Buffer.alloc(0) });
    for (let i = 0; i < 3; i++) files.push({ rel: `big/b${i}.bin`, data: randomData(MAX_GET_BATCH_FILE + 1 + i * 40_000) });
    for (const file of files) {
      await fs.mkdir(path.dirname(path.join(source, file.rel)), { recursive: true });
      await fs.writeFile(path.join(source, file.rel), file.data);
    }
    for (let i = 0; i < files.length; i += 10) {
      await client.putBatch(files.slice(i, i + 10).filter((f) => f.data.length <= 32 * 1024).map((f) => ({ name: `tree/${f.rel}`, data: f.data })));
    }
    for (const file of files.filter((f) => f.data.length > 32 * 1024)) await client.put(file.data, `tree/${file.rel}`);
    await client.close();
  });
  after(async () => {
    await server.stop();
    await fs.rm(work, { recursive: true, force: true });
  });

  it('fetches a tree of a few hundred files in batches, equal to the source, leaving no temporaries', async () => {
    const proxy = await startCountingProxy(server.address.port);
    try {
      const dest = path.join(work, 'copy');
      const result = await runCli(['get', '-r', 'tree', '-o', dest, '-s', `127.0.0.1:${proxy.port}`, '--json']);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout.trim().split('\n').length, 304);
      await sameTrees(source, dest);
      // Small files came in full batches (64 at most each, per connection), only the large ones by GET.
      assert.equal(proxy.requests.get('GET'), 3);
      const batches = proxy.requests.get('GET_BATCH') ?? 0;
      assert.ok(batches >= 5 && batches <= 12, `${batches} batches`);
    } finally {
      await proxy.close();
    }
  });

  it('a version-5 server gets a GET per file, with the same result', async () => {
    const proxy = await startCountingProxy(server.address.port, 5);
    try {
      const dest = path.join(work, 'copy-v5');
      const result = await runCli(['get', '-r', 'tree', '-o', dest, '-s', `127.0.0.1:${proxy.port}`, '--quiet']);
      assert.equal(result.code, 0, result.stderr);
      await sameTrees(source, dest);
      assert.equal(proxy.requests.get('GET'), 304);
      assert.equal(proxy.requests.get('GET_BATCH'), undefined);
    } finally {
      await proxy.close();
    }
  });

  it('treats existing files as before: identical ones skipped, others replaced keeping their mode; -p keeps mtimes', async () => {
    const dest = path.join(work, 'again');
    const s = `127.0.0.1:${server.address.port}`;
    const first = await runCli(['get', '-r', 'tree/d0', '-o', dest, '-s', s, '--quiet']);
    assert.equal(first.code, 0, first.stderr);
    const names = (await treeOf(dest)).filter((f) => !f.endsWith('/'));
    const changed = path.join(dest, names[0]!);
    const replacedMode = path.join(dest, names[1]!);
    await fs.writeFile(changed, 'local edit');
    await fs.writeFile(replacedMode, 'another local edit');
    await fs.chmod(replacedMode, 0o600);
    const again = await runCli(['get', '-r', 'tree/d0', '-o', dest, '-s', s, '-p']);
    assert.equal(again.code, 0, again.stderr);
    const lines = again.stdout.trim().split('\n');
    assert.equal(lines.filter((l) => l.startsWith('skipped ')).length, names.length - 2);
    assert.equal(lines.filter((l) => l.startsWith('saved ')).length, 2);
    await sameTrees(path.join(source, 'd0'), dest);
    assert.equal((await fs.stat(replacedMode)).mode & 0o777, 0o600);
    // -p: every file, fetched or left alone, has the stored modification time.
    const client = await connect({ port: server.address.port });
    for (const entry of await client.list('tree/d0')) {
      const local = path.join(dest, entry.name.slice('tree/d0/'.length));
      // (utimes takes seconds as a double: a millisecond may round away, as with a single get -p)
      assert.ok(Math.abs((await fs.stat(local)).mtimeMs - entry.mtime.getTime()) <= 1, entry.name);
    }
    await client.close();
    assert.deepEqual((await fs.readdir(path.dirname(changed))).filter((f) => f.startsWith('.ferry')), []);
  });

  it('never replaces a file another program put in a folder get -r created, while its batch was on the way', async () => {
    const dest = path.join(work, 'raced');
    const planted: string[] = [];
    // The replies to the first GET_BATCH are held until a file is at each of its paths.
    const proxy = await startCountingProxy(server.address.port, undefined, async (names) => {
      for (const name of names) {
        const local = path.join(dest, name.slice('tree/d1/'.length));
        await fs.writeFile(local, 'planted');
        planted.push(local);
      }
    });
    try {
      const result = await runCli(['get', '-r', 'tree/d1', '-o', dest, '-s', `127.0.0.1:${proxy.port}`, '--quiet']);
      assert.equal(result.code, 1);
      assert.ok(planted.length > 0);
      for (const local of planted) {
        assert.equal(await fs.readFile(local, 'utf8'), 'planted', local);
        assert.match(result.stderr, new RegExp(`${local.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} appeared during the download`));
      }
      assert.match(result.stderr, new RegExp(`${planted.length} of 50 files failed`));
      const all = await treeOf(dest);
      assert.equal(all.filter((f) => !f.endsWith('/')).length, 50);
      assert.deepEqual(all.filter((f) => f.includes('.ferry')), []);
    } finally {
      await proxy.close();
    }
  });

  it('a refused file is reported and the rest still arrives (a corrupt stored file)', async () => {
    const client = await connect({ port: server.address.port });
    // A whole-millisecond mtime, so the test can put it back exactly after the damage.
    const mtimeMs = 1_700_000_000_000;
    for (let i = 0; i < 10; i++) await client.put(randomData(500 + i), `rotting/f${i}.txt`, { mtimeMs });
    await client.close();
    // Bit rot: the bytes change in place, the inode, size and mtime (what the record names) do not.
    const rotten = path.join(server.root, 'rotting/f3.txt');
    const handle = await fs.open(rotten, 'r+');
    await handle.write(Buffer.from('ROT'), 0, 3, 10);
    await handle.close();
    await fs.utimes(rotten, new Date(mtimeMs), new Date(mtimeMs));
    const dest = path.join(work, 'rot');
    const result = await runCli(['get', '-r', 'rotting', '-o', dest, '-s', `127.0.0.1:${server.address.port}`, '--quiet']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /rotting\/f3\.txt: "rotting\/f3\.txt" on the server does not match its digest record/);
    assert.match(result.stderr, /1 of 10 files failed/);
    await assert.rejects(fs.stat(path.join(dest, 'f3.txt')), { code: 'ENOENT' });
    assert.equal((await treeOf(dest)).length, 9);
  });

  it('a bad name among several is refused on its own line; the other files still arrive', async () => {
    const dest = path.join(work, 'mixed');
    await fs.mkdir(dest);
    const names = ['tree/d0/sub0/f0.txt', '/etc/passwd', 'tree/d1/sub1/f1.txt', '../up'];
    const result = await runCli(['get', ...names, '-o', dest, '-s', `127.0.0.1:${server.address.port}`, '--quiet']);
    assert.equal(result.code, 1);
    const lines = result.stderr.trim().split('\n');
    assert.deepEqual(lines.filter((l) => l.includes('bad name')).sort(), [
      'ferry: ../up: bad name "../up": name has a ".." component',
      'ferry: /etc/passwd: bad name "/etc/passwd": name is an absolute path',
    ].sort());
    assert.match(result.stderr, /2 of 4 files failed/);
    assert.deepEqual(await treeOf(dest), ['f0.txt', 'f1.txt']);
    assert.ok((await fs.readFile(path.join(dest, 'f0.txt'))).equals(await fs.readFile(path.join(source, 'd0/sub0/f0.txt'))));
  });
});

/** Issue 12: `put -r` sends small files in full PUT_BATCH requests, one gathering per connection. */
describe('ferry put -r with batches', () => {
  let server: TestServer;
  let work: string;
  before(async () => {
    server = await startServer();
    work = await tempDir('ferry-putbatch-');
  });
  after(async () => {
    await server.stop();
    await fs.rm(work, { recursive: true, force: true });
  });

  it('sends a tree of a few hundred small files in few, full batches, stored equal to the source', async () => {
    const source = path.join(work, 'up');
    for (let i = 0; i < 300; i++) {
      await fs.mkdir(path.join(source, `d${i % 5}`), { recursive: true });
      await fs.writeFile(path.join(source, `d${i % 5}`, `f${i}.txt`), randomData((i * 131) % 4000));
    }
    const proxy = await startCountingProxy(server.address.port);
    try {
      const result = await runCli(['put', '-r', source, '-s', `127.0.0.1:${proxy.port}`, '--quiet']);
      assert.equal(result.code, 0, result.stderr);
      // Batches of a lane each (32 lanes per connection, files dealt in turn) were ~5 files each: ~60 batches.
      const batches = proxy.requests.get('PUT_BATCH') ?? 0;
      // 600 KB in frames of at most 64 KiB: 10 full batches, plus what each connection had gathered
      // at the end — lanes that finish a file read after the first flush send a few more small
      // ones, more of them on a loaded machine (17 seen under a parallel test run), far from ~60.
      assert.ok(batches >= 10 && batches <= 24, `${batches} batches`);
      assert.equal(proxy.requests.get('PUT'), undefined);
      const copy = path.join(work, 'back');
      const back = await runCli(['get', '-r', 'up', '-o', copy, '-s', `127.0.0.1:${server.address.port}`, '--quiet']);
      assert.equal(back.code, 0, back.stderr);
      await sameTrees(source, copy);
    } finally {
      await proxy.close();
    }
  });
});

/** Issue 12: from protocol 7, `get -r` lists a folder in pages (LIST with PAGE), never whole. */
describe('ferry get -r of a folder larger than a listing page', () => {
  let server: TestServer;
  let work: string;
  before(async () => {
    server = await startServer();
    work = await tempDir('ferry-getpages-');
    const client = await connect({ port: server.address.port });
    // 1,005 files (a page is 1,000 entries) and a folder with one file.
    for (let start = 0; start < 1005; start += 201) {
      await client.putBatch(Array.from({ length: 201 }, (_, i) => ({ name: `big/f${String(start + i).padStart(4, '0')}`, data: Buffer.from(`${start + i}`) })));
    }
    await client.putBatch([{ name: 'big/sub/x', data: Buffer.from('x') }]);
    await client.close();
  });
  after(async () => {
    await server.stop();
    await fs.rm(work, { recursive: true, force: true });
  });

  for (const maxVersion of [undefined, 6]) {
    it(maxVersion === undefined ? 'lists it in two pages and fetches every file' : 'a version-6 server lists it whole, with the same result', async () => {
      const proxy = await startCountingProxy(server.address.port, maxVersion);
      try {
        const dest = path.join(work, `copy-${maxVersion ?? 'paged'}`);
        const result = await runCli(['get', '-r', 'big', '-o', dest, '-s', `127.0.0.1:${proxy.port}`, '--quiet']);
        assert.equal(result.code, 0, result.stderr);
        assert.equal(proxy.requests.get('LIST'), maxVersion === undefined ? 3 : 2, 'big (in pages) and big/sub');
        const files = (await treeOf(dest)).filter((rel) => !rel.endsWith('/'));
        assert.equal(files.length, 1006);
        assert.equal(await fs.readFile(path.join(dest, 'f1004'), 'utf8'), '1004');
        assert.equal(await fs.readFile(path.join(dest, 'sub', 'x'), 'utf8'), 'x');
      } finally {
        await proxy.close();
      }
    });
  }
});
