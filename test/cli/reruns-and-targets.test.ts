import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { runCli, serveForSuite } from '../helpers/cli.js';
import { randomData, sha256 } from '../helpers/fixtures.js';

interface Row {
  name: string;
  local: string;
  size: number;
  digest: string;
  skipped?: string;
  resumedFrom: number;
}

const rows = (stdout: string): Row[] => stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Row);

describe('ferry CLI: re-runs converge, and get -o writes where cp would', () => {
  const suite = serveForSuite();
  let work: string;
  let s: string;
  let data: Buffer;
  before(async () => {
    ({ work, address: s } = suite);
    data = randomData(50_000);
    await fs.writeFile(path.join(work, 'src.bin'), data);
    const put = await runCli(['put', path.join(work, 'src.bin'), '-s', s, '-q']);
    assert.equal(put.code, 0, put.stderr);
  });

  it('re-running put and put -r skips identical files (also in --json), and still refuses a different one', async () => {
    const tree = path.join(work, 'tree');
    await fs.mkdir(path.join(tree, 'sub'), { recursive: true });
    for (const [i, rel] of ['a.txt', 'b.txt', 'sub/c.txt'].entries()) await fs.writeFile(path.join(tree, rel), `file ${i}\n`);
    // An interrupted first run: only some of the files got there.
    assert.equal((await runCli(['put', path.join(tree, 'a.txt'), '--as', 'tree/a.txt', '-s', s, '-q'])).code, 0);
    const rerun = await runCli(['put', '-r', tree, '-s', s, '--json']);
    assert.equal(rerun.code, 0, rerun.stderr);
    const byName = new Map(rows(rerun.stdout).map((r) => [r.name, r]));
    assert.equal(byName.get('tree/a.txt')?.skipped, 'identical');
    assert.equal(byName.get('tree/b.txt')?.skipped, undefined);
    const again = await runCli(['put', '-r', tree, '-s', s]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout.match(/^skipped tree\/.* is already stored, identical/gm)?.length, 3, again.stdout);

    await fs.writeFile(path.join(tree, 'b.txt'), 'changed\n');
    const conflict = await runCli(['put', '-r', tree, '-s', s]);
    assert.equal(conflict.code, 1);
    assert.match(conflict.stderr, /^ferry: tree\/b\.txt: "tree\/b\.txt" already exists: use --overwrite to replace it, or --rename to keep both$/m);
    assert.match(conflict.stderr, /^ferry: 1 of 3 files failed$/m);
    assert.equal((await runCli(['put', '-r', tree, '--overwrite', '-s', s, '-q'])).code, 0);
  });

  it('re-running get and get -r skips identical files and replaces different ones', async () => {
    const dest = path.join(work, 'tree-copy');
    const first = await runCli(['get', '-r', 'tree', '-o', dest, '-s', s, '-q']);
    assert.equal(first.code, 0, first.stderr);
    await fs.writeFile(path.join(dest, 'a.txt'), 'local edit\n');
    const rerun = await runCli(['get', '-r', 'tree', '-o', dest, '-s', s, '--json']);
    assert.equal(rerun.code, 0, rerun.stderr);
    const byName = new Map(rows(rerun.stdout).map((r) => [r.name, r]));
    assert.equal(byName.get('tree/a.txt')?.skipped, undefined, 'a different local file is downloaded again');
    assert.equal(byName.get('tree/b.txt')?.skipped, 'identical');
    assert.equal(byName.get('tree/sub/c.txt')?.skipped, 'identical');
    assert.equal(await fs.readFile(path.join(dest, 'a.txt'), 'utf8'), 'file 0\n');

    const single = await runCli(['get', 'src.bin', '-o', path.join(work, 'copy.bin'), '-s', s]);
    assert.equal(single.code, 0, single.stderr);
    const singleAgain = await runCli(['get', 'src.bin', '-o', path.join(work, 'copy.bin'), '-s', s]);
    assert.equal(singleAgain.code, 0, singleAgain.stderr);
    assert.match(singleAgain.stdout, /^skipped .*copy\.bin already holds src\.bin, identical {2}48\.8 KiB {2}blake3 [0-9a-f]{64}\n$/);
  });

  it('get -p keeps the stored modification time; a replaced file keeps its mode, like cp', async () => {
    const target = path.join(work, 'kept.bin');
    await fs.writeFile(target, 'old');
    await fs.chmod(target, 0o600);
    const got = await runCli(['get', 'src.bin', '-o', target, '-p', '-s', s, '--json']);
    assert.equal(got.code, 0, got.stderr);
    const stats = await fs.stat(target);
    assert.equal(stats.mode & 0o777, 0o600);
    const stored = JSON.parse((await runCli(['stat', 'src.bin', '--json', '-s', s])).stdout) as { mtime: string };
    assert.equal(stats.mtime.toISOString(), stored.mtime);
  });

  it('put -p stores the local modification time (protocol 3), and get -p brings it back', async () => {
    const local = path.join(work, 'dated.txt');
    await fs.writeFile(local, 'dated\n');
    const then = new Date('2001-02-03T04:05:06.789Z');
    await fs.utimes(local, then, then);
    const put = await runCli(['put', local, '--as', 'dated.txt', '-p', '-s', s]);
    assert.equal(put.code, 0, put.stderr);
    const stored = JSON.parse((await runCli(['stat', 'dated.txt', '--json', '-s', s])).stdout) as { mtime: string };
    assert.equal(stored.mtime, then.toISOString());
    const copy = path.join(work, 'dated-copy.txt');
    const got = await runCli(['get', 'dated.txt', '-o', copy, '-p', '-s', s]);
    assert.equal(got.code, 0, got.stderr);
    assert.equal((await fs.stat(copy)).mtime.toISOString(), then.toISOString());
  });

  it('put -p and put -r -p take files whose modification time has a fraction of a millisecond (most fresh files)', async () => {
    const dir = path.join(work, 'fine');
    await fs.mkdir(dir);
    const files = ['one.txt', 'two.txt'];
    for (const file of files) {
      await fs.writeFile(path.join(dir, file), `${file}\n`);
      // Seconds with a fraction below the millisecond: what a file system with ns times holds.
      await fs.utimes(path.join(dir, file), 1_700_000_000.1235, 1_700_000_000.1235);
    }
    assert.notEqual((await fs.stat(path.join(dir, 'one.txt'))).mtimeMs % 1, 0, 'the test file has a fractional mtimeMs');
    const single = await runCli(['put', path.join(dir, 'one.txt'), '--as', 'fine-one.txt', '-p', '-s', s]);
    assert.equal(single.code, 0, single.stderr);
    const tree = await runCli(['put', '-r', dir, '-p', '-s', s]);
    assert.equal(tree.code, 0, tree.stderr);
    for (const name of ['fine-one.txt', 'fine/one.txt', 'fine/two.txt']) {
      const stored = JSON.parse((await runCli(['stat', name, '--json', '-s', s])).stdout) as { mtime: string };
      assert.equal(stored.mtime, '2023-11-14T22:13:20.123Z', name);
    }
    // And back: get -p and get -r -p set the same millisecond (a time set as seconds, a double, must not read back one early).
    const back = path.join(work, 'fine-back');
    assert.equal((await runCli(['get', 'fine-one.txt', '-o', `${back}-one.txt`, '-p', '-s', s])).code, 0);
    assert.equal((await runCli(['get', '-r', 'fine', '-o', back, '-p', '-s', s])).code, 0);
    for (const file of [`${back}-one.txt`, path.join(back, 'one.txt'), path.join(back, 'two.txt')]) {
      assert.equal((await fs.stat(file)).mtime.toISOString(), '2023-11-14T22:13:20.123Z', file);
    }
  });

  it('writes into a FIFO, a character device and through a symlink instead of replacing them', async () => {
    const fifo = path.join(work, 'myfifo');
    execFileSync('mkfifo', [fifo]);
    const reader = spawn('cat', [fifo]);
    const chunks: Buffer[] = [];
    reader.stdout.on('data', (d: Buffer) => chunks.push(d));
    const readerDone = new Promise((resolve) => reader.on('close', resolve));
    const intoFifo = await runCli(['get', 'src.bin', '-o', fifo, '-s', s]);
    // Had the FIFO been replaced by a file, the reader would wait forever: give it 5 s.
    await Promise.race([readerDone, new Promise((resolve) => setTimeout(resolve, 5000))]);
    reader.kill();
    assert.equal(intoFifo.code, 0, intoFifo.stderr);
    assert.equal(sha256(Buffer.concat(chunks)), sha256(data));
    assert.ok((await fs.lstat(fifo)).isFIFO(), 'the FIFO is still a FIFO');

    // A device node of our own (root can make one; otherwise /dev/null itself, which is only written into).
    let device = path.join(work, 'mynull');
    try {
      execFileSync('mknod', [device, 'c', '1', '3']);
    } catch {
      device = '/dev/null';
    }
    const intoDevice = await runCli(['get', 'src.bin', '-o', device, '-s', s]);
    assert.equal(intoDevice.code, 0, intoDevice.stderr);
    assert.ok((await fs.lstat(device)).isCharacterDevice(), 'the device is still a device');
    await assert.rejects(fs.stat(`${device}.ferry-part`), { code: 'ENOENT' });

    const full = await runCli(['get', 'src.bin', '-o', '/dev/full', '-s', s]);
    assert.equal(full.code, 1);
    assert.equal(full.stderr, 'ferry: cannot write /dev/full: no space left on the device\n');

    const real = path.join(work, 'real.bin');
    await fs.writeFile(real, 'old');
    const link = path.join(work, 'link.bin');
    await fs.symlink(real, link);
    const throughLink = await runCli(['get', 'src.bin', '-o', link, '-s', s]);
    assert.equal(throughLink.code, 0, throughLink.stderr);
    assert.ok((await fs.lstat(link)).isSymbolicLink(), 'the link stays a link');
    assert.ok((await fs.readFile(real)).equals(data), 'its target got the bytes');
    const dangling = path.join(work, 'dangling.bin');
    await fs.symlink(path.join(work, 'nowhere.bin'), dangling);
    const refused = await runCli(['get', 'src.bin', '-o', dangling, '-s', s]);
    assert.equal(refused.code, 1);
    assert.equal(refused.stderr, `ferry: not writing through dangling symbolic link ${dangling}\n`);
  });

  it('get -o into a missing folder is an error naming it, and creates nothing', async () => {
    const missing = path.join(work, 'nonexistent-dir');
    const result = await runCli(['get', 'src.bin', '-o', path.join(missing, 'x'), '-s', s]);
    assert.equal(result.code, 1);
    assert.equal(result.stderr, `ferry: cannot write ${path.join(missing, 'x')}: no such folder ${missing}\n`);
    await assert.rejects(fs.stat(missing), { code: 'ENOENT' });
    const proc = await runCli(['get', 'src.bin', '-o', '/proc/x', '-s', s]);
    assert.equal(proc.code, 1);
    assert.doesNotMatch(proc.stderr, /ferry-part/);
    assert.match(proc.stderr, /^ferry: cannot write \/proc\/x: /);
  });
});
