import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { runCli, serveForSuite, startServeProcess, type ServeProcess } from '../helpers/cli.js';
import { assertDigest, digestHex, randomData } from '../helpers/fixtures.js';

/** An expected error: exactly one line on stderr, no stack trace. */
function assertOneLineError(stderr: string, pattern: RegExp): void {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got: ${stderr}`);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(stderr, /\n\s+at /);
}

describe('ferry CLI', () => {
  const suite = serveForSuite();
  let work: string;
  let server: ServeProcess;
  let s: string;
  before(() => ({ work, server, address: s } = suite));

  it('puts, lists, stats, gets and removes a file', async () => {
    const data = randomData(100_000);
    const file = path.join(work, 'report.pdf');
    await fs.writeFile(file, data);
    const put = await runCli(['put', file, '-s', s]);
    assert.equal(put.code, 0, put.stderr);
    assert.match(put.stdout, new RegExp(`stored report\\.pdf .*blake3 ${digestHex('blake3', data)}.*/s\\)`));

    const asFolder = await runCli(['put', file, '--as', 'a/b.txt', '-s', s, '--quiet']);
    assert.equal(asFolder.code, 0);
    assert.equal(asFolder.stdout, '');

    const ls = await runCli(['ls', '-s', s]);
    assert.equal(ls.code, 0);
    assert.match(ls.stdout, /^\d{4}-\d\d-\d\d \d\d:\d\d {2}100000 {2}[0-9a-f]{12} {2}a\/b\.txt$/m);
    const json = JSON.parse((await runCli(['ls', '--json', '-s', s])).stdout) as { name: string; size: number; mtime: string; algorithm: 'sha256' | 'blake3'; digest: string }[];
    assert.deepEqual(json.map((e) => e.name), ['a/b.txt', 'report.pdf']);
    assert.deepEqual(Object.keys(json[0]!), ['name', 'size', 'mtime', 'algorithm', 'digest']);
    assertDigest(json[1]!, data);
    assert.ok(!Number.isNaN(Date.parse(json[1]!.mtime)));

    const stat = await runCli(['stat', 'report.pdf', '--json', '-s', s]);
    assert.equal((JSON.parse(stat.stdout) as { size: number }).size, 100_000);

    const copy = path.join(work, 'copy.pdf');
    const get = await runCli(['get', 'report.pdf', '-o', copy, '-s', s]);
    assert.equal(get.code, 0, get.stderr);
    assert.ok((await fs.readFile(copy)).equals(data));

    const rm = await runCli(['rm', 'a/b.txt', '-s', s]);
    assert.equal(rm.code, 0);
    assert.equal(rm.stdout, 'removed a/b.txt\n');
  });

  it('uses FERRY_SERVER when no --server is given', async () => {
    const ls = await runCli(['ls', '--json'], { env: { FERRY_SERVER: s } });
    assert.equal(ls.code, 0, ls.stderr);
  });

  it('runs the classic roundtrip check', async () => {
    const original = path.join(work, 'student_info.txt');
    await fs.writeFile(original, 'Name: Ada\nID: 42\n');
    const kept = path.join(work, 'server_downloaded_student_info.txt');
    const result = await runCli(['roundtrip', original, '--as', 'student_info_from_client.txt', '-o', kept, '-s', s]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^identical: .*student_info\.txt.*\(17 bytes.*blake3 [0-9a-f]{64}\)\n$/);
    assert.equal(await fs.readFile(kept, 'utf8'), 'Name: Ada\nID: 42\n');
    const noKeep = await runCli(['roundtrip', original, '--as', 'rt2.txt', '-s', s]);
    assert.equal(noKeep.code, 0);
  });

  it('prints one line and exits 1 for expected failures', async () => {
    const missing = await runCli(['get', 'nope.txt', '-o', path.join(work, 'nope.txt'), '-s', s]);
    assert.equal(missing.code, 1);
    assertOneLineError(missing.stderr, /^ferry: no file named "nope\.txt"$/);
    await assert.rejects(fs.stat(path.join(work, 'nope.txt')), { code: 'ENOENT' });

    const file = path.join(work, 'dup.txt');
    await fs.writeFile(file, 'x');
    assert.equal((await runCli(['put', file, '-s', s])).code, 0);
    await fs.writeFile(file, 'different');
    const exists = await runCli(['put', file, '-s', s]);
    assert.equal(exists.code, 1);
    assertOneLineError(exists.stderr, /^ferry: "dup\.txt" already exists: use --overwrite to replace it, or --rename to keep both$/);
    assert.equal((await runCli(['put', file, '--overwrite', '-s', s])).code, 0);

    const noLocal = await runCli(['put', path.join(work, 'absent'), '-s', s]);
    assert.equal(noLocal.code, 1);
    assertOneLineError(noLocal.stderr, /no such local file/);

    const badName = await runCli(['put', file, '--as', '../evil', '-s', s]);
    assert.equal(badName.code, 1);
    assertOneLineError(badName.stderr, /bad name/);

    const closedPort = await freePort();
    const refused = await runCli(['ls', '-s', `127.0.0.1:${closedPort}`]);
    assert.equal(refused.code, 1);
    assertOneLineError(refused.stderr, /connection refused by 127\.0\.0\.1:\d+: is the ferry server running\?/);
  });

  it('exits 2 on usage errors', async () => {
    for (const args of [['serve', '--port', '99999'], ['serve', '--port', 'abc'], ['serve', '--port', '-1'], ['frobnicate'], ['put'], ['ls', '--bogus'], ['ls', '-s', 'host:notaport']]) {
      const result = await runCli(args);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.doesNotMatch(result.stderr, /\n\s+at /);
    }
  });

  it('reports a port in use in one line', async () => {
    const result = await runCli(['serve', '--port', String(server.port), '--root', path.join(work, 'other')]);
    assert.equal(result.code, 1);
    assertOneLineError(result.stderr, /127\.0\.0\.1:\d+ is already in use/);
  });

  it('has --version and complete --help with examples on every command', async () => {
    const version = await runCli(['--version']);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
    for (const command of ['serve', 'put', 'get', 'ls', 'stat', 'rm', 'roundtrip']) {
      const help = await runCli([command, '--help']);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /Examples:\n {2}\$ ferry /, command);
    }
  });

  it('serve creates its root, and stops with exit 0 on SIGINT', async () => {
    const root = path.join(work, 'fresh', 'root');
    const other = await startServeProcess(['--root', root]);
    assert.ok((await fs.stat(root)).isDirectory());
    assert.equal(await other.stop('SIGINT'), 0);
    assert.match(other.output(), /stopped/);
  });
});

async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}
