import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { encodeMessage, PutFlag } from '../../src/protocol/index.js';
import { runCli, serveForSuite, type ServeProcess } from '../helpers/cli.js';
import { startFakeServer } from '../helpers/fake-server.js';
import { assertDigest, randomData, treeOf } from '../helpers/fixtures.js';
import { RawPeer } from '../helpers/raw-peer.js';

/** Builds a tree with nested folders, spaces and unicode names; returns its relative file paths. */
async function makeTree(root: string): Promise<string[]> {
  const files = ['top.txt', 'with space.txt', 'été/naïve ☃.txt', 'a/b/c/deep.bin', 'a/b/empty.dat', '日本/ファイル.md'];
  for (const [i, rel] of files.entries()) {
    await fs.mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await fs.writeFile(path.join(root, rel), rel.endsWith('empty.dat') ? Buffer.alloc(0) : randomData(100 + i * 5000));
  }
  return files;
}

async function sameTrees(a: string, b: string): Promise<void> {
  assert.deepEqual(await treeOf(a), await treeOf(b));
  for (const rel of await treeOf(a)) {
    if (rel.endsWith('/')) continue;
    assert.ok((await fs.readFile(path.join(a, rel))).equals(await fs.readFile(path.join(b, rel))), rel);
  }
}

describe('ferry CLI: folders, many files, pipes, resume', () => {
  const suite = serveForSuite();
  let work: string;
  let server: ServeProcess;
  let s: string;
  before(() => ({ work, server, address: s } = suite));

  it('round-trips a tree with nested folders, spaces and unicode names (put -r, ls, get -r, rm -r)', async () => {
    const src = path.join(work, 'tree');
    const files = await makeTree(src);
    await fs.symlink('/etc/passwd', path.join(src, 'link-out'));
    const put = await runCli(['put', '-r', src, '-s', s, '--json']);
    assert.equal(put.code, 0, put.stderr);
    assert.match(put.stderr, /warning: skipping symbolic link .*link-out/);
    const rows = put.stdout.trim().split('\n').map((l) => JSON.parse(l) as { name: string; resumedFrom: number });
    assert.deepEqual(rows.map((r) => r.name).sort(), files.map((f) => `tree/${f}`).sort());
    assert.ok(rows.every((r) => r.resumedFrom === 0));

    const ls = JSON.parse((await runCli(['ls', 'tree/a', '--json', '-s', s])).stdout) as { name: string }[];
    assert.deepEqual(ls.map((e) => e.name), ['tree/a/b/c/deep.bin', 'tree/a/b/empty.dat']);

    await fs.rm(path.join(src, 'link-out'));
    const dest = path.join(work, 'tree-copy');
    const get = await runCli(['get', '-r', 'tree', '-o', dest, '-s', s, '--quiet']);
    assert.equal(get.code, 0, get.stderr);
    await sameTrees(src, dest);

    const rm = await runCli(['rm', '-r', 'tree/a', '-s', s]);
    assert.equal(rm.code, 0, rm.stderr);
    const after = JSON.parse((await runCli(['ls', 'tree', '--json', '-s', s])).stdout) as { name: string }[];
    assert.ok(after.every((e) => !e.name.startsWith('tree/a/')));
    const missing = await runCli(['rm', '-r', 'tree/a', '-s', s]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^ferry: no folder named "tree\/a"\n$/);
  });

  it('moves 1,000 files in one command each way', async () => {
    const src = path.join(work, 'thousand');
    await fs.mkdir(src);
    for (let i = 0; i < 1000; i++) await fs.writeFile(path.join(src, `f${String(i).padStart(4, '0')}.txt`), `file ${i}\n`);
    const put = await runCli(['put', '-r', src, '-s', s, '--quiet'], { timeoutMs: 60_000 });
    assert.equal(put.code, 0, put.stderr);
    const listing = JSON.parse((await runCli(['ls', 'thousand', '--json', '-s', s])).stdout) as unknown[];
    assert.equal(listing.length, 1000);
    const dest = path.join(work, 'thousand-copy');
    const get = await runCli(['get', '-r', 'thousand', '-o', dest, '-s', s, '--quiet', '--parallel', '3'], { timeoutMs: 60_000 });
    assert.equal(get.code, 0, get.stderr);
    await sameTrees(src, dest);
  });

  it('puts and gets several named files in one command', async () => {
    const names = ['one.txt', 'two.txt', 'three.txt'];
    for (const n of names) await fs.writeFile(path.join(work, n), `content of ${n}`);
    const put = await runCli(['put', ...names.map((n) => path.join(work, n)), '-s', s]);
    assert.equal(put.code, 0, put.stderr);
    assert.equal(put.stdout.trim().split('\n').length, 3);
    const out = path.join(work, 'several');
    const get = await runCli(['get', ...names, 'missing.txt', '-o', out, '-s', s]);
    assert.equal(get.code, 1);
    assert.match(get.stderr, /missing\.txt: no file named "missing\.txt"/);
    assert.match(get.stderr, /1 of 4 files failed/);
    for (const n of names) assert.equal(await fs.readFile(path.join(out, n), 'utf8'), `content of ${n}`);
  });

  it('writes into an existing folder given as -o, like cp', async () => {
    await fs.writeFile(path.join(work, 'into.txt'), 'into a folder');
    assert.equal((await runCli(['put', path.join(work, 'into.txt'), '-s', s, '-q'])).code, 0);
    const folder = path.join(work, 'target-folder');
    await fs.mkdir(folder);
    for (const output of [folder, `${path.join(work, 'new-folder')}/`]) {
      const get = await runCli(['get', 'into.txt', '-o', output, '-s', s, '-q']);
      assert.equal(get.code, 0, get.stderr);
      assert.equal(await fs.readFile(path.join(output, 'into.txt'), 'utf8'), 'into a folder');
    }
  });

  it('reads stdin and writes stdout', async () => {
    const data = randomData(300_000);
    const put = await runCli(['put', '-', '--as', 'piped.bin', '-s', s, '--json'], { input: data.toString('latin1') });
    assert.equal(put.code, 0, put.stderr);
    assertDigest(JSON.parse(put.stdout) as { digest: string; algorithm: 'sha256' | 'blake3' }, data);
    const get = await runCli(['get', 'piped.bin', '-o', '-', '-s', s], { binary: true });
    assert.equal(get.code, 0, get.stderr);
    assert.ok(get.stdoutBytes!.equals(data));
    assert.match(get.stderr, /saved stdout from piped\.bin/);
  });

  it('renames on a clash with --rename, and shows stat and ls -l', async () => {
    const file = path.join(work, 'clash.txt');
    await fs.writeFile(file, 'x');
    await runCli(['put', file, '-s', s]);
    await fs.writeFile(file, 'y');
    const renamed = await runCli(['put', file, '--rename', '-s', s, '--json']);
    assert.equal((JSON.parse(renamed.stdout) as { name: string }).name, 'clash (1).txt');
    const stat = await runCli(['stat', 'clash (1).txt', '-s', s]);
    assert.match(stat.stdout, /size {4}1 \(1 B\)/);
    const long = await runCli(['ls', '-l', '-s', s]);
    assert.match(long.stdout, /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}.*1 B {2}[0-9a-f]{12} {2}clash \(1\)\.txt/);
  });

  it('says "resuming at" when a put or get continues an interrupted transfer', async () => {
    const data = randomData(2 * 1024 * 1024 + 3);
    const file = path.join(work, 'resume.bin');
    await fs.writeFile(file, data);
    const peer = await RawPeer.connect(server.port);
    peer.send({ type: 'PUT', id: 1, name: 'resume.bin', flags: PutFlag.AWAIT_READY, size: data.length });
    await peer.waitFor((m) => m.type === 'PUT_READY');
    peer.write(data.subarray(0, 777_777));
    peer.socket.end();
    await peer.waitClosed();
    await new Promise((r) => setTimeout(r, 100));
    const put = await runCli(['put', file, '-s', s, '--json']);
    assert.equal(put.code, 0, put.stderr);
    assert.match(put.stderr, /^resuming at 777777 bytes: resume\.bin$/m);
    assert.equal((JSON.parse(put.stdout) as { resumedFrom: number }).resumedFrom, 777_777);

    const target = path.join(work, 'resumed-copy.bin');
    await fs.writeFile(`${target}.ferry-part`, data.subarray(0, 1_000_000));
    const get = await runCli(['get', 'resume.bin', '-o', target, '-s', s]);
    assert.equal(get.code, 0, get.stderr);
    assert.match(get.stderr, /resuming at 1000000 bytes/);
    assert.ok((await fs.readFile(target)).equals(data));

    await fs.writeFile(`${target}.ferry-part`, data.subarray(0, 1_000_000));
    const fresh = await runCli(['get', 'resume.bin', '-o', target, '--no-resume', '-s', s, '--json']);
    assert.equal((JSON.parse(fresh.stdout) as { resumedFrom: number }).resumedFrom, 0);
  });

  it('refuses names from a malicious server on get -r and writes nothing outside DEST', async () => {
    for (const evil of ['../x', 'photos/../../x', 'elsewhere/x']) {
      const fake = await startFakeServer((m, socket) => {
        if (m.type === 'LIST') {
          socket.write(encodeMessage({ type: 'ENTRIES', id: m.id, more: false, entries: [{ name: evil, kind: 'file', size: 1, mtimeMs: 0, digest: Buffer.alloc(32) }] }));
        }
      });
      const dest = path.join(work, 'evil-dest', 'inner');
      const result = await runCli(['get', '-r', 'photos', '-o', dest, '-s', `127.0.0.1:${fake.port}`]);
      await fake.close();
      assert.equal(result.code, 1, evil);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
      assert.match(result.stderr, /unusable name|outside/);
      await assert.rejects(fs.stat(path.join(work, 'evil-dest')), { code: 'ENOENT' });
      await assert.rejects(fs.stat(path.join(work, 'x')), { code: 'ENOENT' });
    }
  });

  it('exits 2 on misuse of the new options', async () => {
    for (const args of [['put', 'a', 'b', '--as', 'c'], ['put', '-', '-s', s], ['get', 'a', 'b', '-o', '-'], ['put', 'x', '--parallel', '0']]) {
      const result = await runCli([...args, '-s', s]);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    }
  });
});
