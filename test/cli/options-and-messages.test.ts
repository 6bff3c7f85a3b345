import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { runCli, serveForSuite } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';

describe('ferry CLI: every numeric option is checked', () => {
  it('a bad value is exit 2, naming the option and its range, before any connection', async () => {
    const cases: [string[], RegExp][] = [
      [['ls', '--timeout', 'abc'], /^ferry: invalid --timeout "abc": use a number of seconds from 0\.001 to 2147483 \(see --help\)$/],
      [['ls', '--timeout', '-1'], /invalid --timeout "-1": use a number of seconds from 0\.001 to 2147483/],
      [['ls', '--timeout', '0'], /invalid --timeout "0"/],
      [['get', 'x', '--timeout', '2147484'], /invalid --timeout "2147484"/],
      [['shell', '--timeout', '1e3'], /invalid --timeout "1e3"/],
      [['exchange', 'send', '1', '--timeout', 'never'], /invalid --timeout "never"/],
      [['put', 'x', '--raw', '-s', '127.0.0.1:1', '--timeout', '0'], /invalid --timeout "0"/],
      [['put', 'x', '--parallel', '65'], /invalid --parallel "65": use a whole number from 1 to 64/],
      [['get', 'x', '--parallel', '1.5'], /invalid --parallel "1\.5"/],
      [['serve', '--handshake-timeout', '9999999'], /invalid --handshake-timeout "9999999": use a number of seconds from 0\.001 to 2147483/],
      [['serve', '--raw-idle-timeout', '9999999'], /invalid --raw-idle-timeout "9999999"/],
      [['serve', '--max-partials', '-1'], /invalid --max-partials "-1": use a whole number from 0/],
      [['serve', '--max-open-files', '3'], /invalid --max-open-files "3": use a whole number from 16/],
      [['serve', '--max-partial-bytes', 'lots'], /invalid --max-partial-bytes "lots"/],
      [['serve', '--idle-timeout', '0'], /invalid --idle-timeout "0"/],
      [['serve', '--grace', '-5'], /invalid --grace "-5": use a number of seconds from 0 to 2147483/],
      [['serve', '--partial-ttl', 'soon'], /invalid --partial-ttl "soon"/],
      [['serve', '--port', '65536'], /invalid --port "65536": use a whole number from 0 to 65535/],
      [['serve', '--raw-port', 'x'], /invalid --raw-port "x"/],
      [['serve', '--max-connections', '0'], /invalid --max-connections "0": use a whole number from 1 to 1000000/],
      [['serve', '--max-per-ip', '-1'], /invalid --max-per-ip "-1"/],
      [['serve', '--max-file-size', '10X'], /invalid --max-file-size "10X": use a size of at least 1 byte/],
      [['serve', '--quota', '0'], /invalid --quota "0"/],
      [['exchange', 'serve', '--port', '70000'], /invalid --port "70000"/],
      [['put', 'x', '--rename', '--overwrite'], /^ferry: --overwrite and --rename exclude each other: give one of them \(see --help\)$/],
    ];
    for (const [args, pattern] of cases) {
      const result = await runCli(args);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
      assert.match(result.stderr.trim(), pattern, args.join(' '));
    }
  });
});

describe('ferry CLI: messages name real flags and paths; listings say when empty', () => {
  const suite = serveForSuite();
  let work: string;
  let s: string;
  before(() => ({ work, address: s } = suite));

  it('ls of an empty store says so; ls of a missing folder is exit 1', async () => {
    const empty = await runCli(['ls', '-s', s]);
    assert.equal(empty.code, 0);
    assert.equal(empty.stdout, '');
    assert.equal(empty.stderr, 'ferry: no files stored yet\n');
    assert.equal((await runCli(['ls', '--json', '-s', s])).stdout, '[]\n');
    const missing = await runCli(['ls', 'missing', '-s', s]);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, 'ferry: no folder named "missing"\n');
  });

  it('a name under a stored file, rm of several names, ls and ls -l times', async () => {
    const file = path.join(work, 'zero.txt');
    await fs.writeFile(file, '0');
    assert.equal((await runCli(['put', file, '-s', s, '-q'])).code, 0);
    const under = await runCli(['put', file, '--as', 'zero.txt/x', '-s', s]);
    assert.equal(under.code, 1);
    assert.equal(under.stderr, 'ferry: cannot store "zero.txt/x": a folder on its path is already a stored file\n');

    const ofFile = await runCli(['ls', 'zero.txt', '-s', s]);
    assert.equal(ofFile.code, 0, ofFile.stderr);
    assert.match(ofFile.stdout, / zero\.txt\n$/);

    const short = (await runCli(['ls', '-s', s])).stdout.trim();
    const long = (await runCli(['ls', '-l', '-s', s])).stdout.trim();
    const shortTime = /^(\d{4}-\d\d-\d\d \d\d:\d\d) /.exec(short)?.[1];
    assert.ok(shortTime !== undefined, short);
    assert.ok(long.startsWith(`${shortTime}:`), `ls -l shows the same clock as ls: ${short} / ${long}`);

    await fs.writeFile(path.join(work, 'b.txt'), 'b');
    assert.equal((await runCli(['put', path.join(work, 'b.txt'), '-s', s, '-q'])).code, 0);
    const rm = await runCli(['rm', 'zero.txt', 'missing', 'b.txt', '-s', s]);
    assert.equal(rm.code, 1);
    assert.equal(rm.stdout, 'removed zero.txt\nremoved b.txt\n');
    assert.equal(rm.stderr, 'ferry: missing: no file named "missing"\nferry: 1 of 3 failed\n');
  });

  it('put of several files goes on past a missing one', async () => {
    await fs.writeFile(path.join(work, 'one.txt'), '1');
    await fs.writeFile(path.join(work, 'two.txt'), '2');
    const result = await runCli(['put', path.join(work, 'one.txt'), path.join(work, 'absent.txt'), path.join(work, 'two.txt'), '-s', s, '-q']);
    assert.equal(result.code, 1);
    assert.equal(result.stderr, `ferry: absent.txt: no such local file: ${path.join(work, 'absent.txt')}\nferry: 1 of 3 files failed\n`);
    assert.match((await runCli(['ls', '-s', s])).stdout, /one\.txt\n.*two\.txt\n/);
  });

  it('the raw sender reports failures with "ferry:" like every command', async () => {
    const dir = await tempDir();
    await fs.writeFile(path.join(dir, 'f'), 'x');
    const result = await runCli(['put', '--raw', path.join(dir, 'f'), '-s', '127.0.0.1:1']);
    await fs.rm(dir, { recursive: true, force: true });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^ferry: connection refused by 127\.0\.0\.1:1/);
  });
});
