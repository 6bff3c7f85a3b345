import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from '../../src/index.js';
import { CLI, freePort, runCli, spawnWatched, startServer, tempDir, type RunningServer } from './helpers.js';

/** Terminal control sequences removed, so tests can read what a user would see. */
function screenText(output: string): string {
  // eslint-disable-next-line no-control-regex
  return output.replace(/\u001b\[[0-9;?]*[A-Za-z]|\u001b[78]/g, '').replace(/\r/g, '');
}

describe('ferry shell', { timeout: 30_000 }, () => {
  let work: string;
  let running: RunningServer;
  let address: string;

  before(async () => {
    work = await tempDir();
    running = await startServer({ root: path.join(work, 'store') });
    address = `127.0.0.1:${running.address.port}`;
    await fs.writeFile(path.join(work, 'a.txt'), 'hello from a\n');
    const client = await connect({ port: running.address.port });
    await client.put(Buffer.from('quarterly numbers\n'), 'report-2026.txt');
    await client.close();
  });
  after(async () => {
    await running.stop();
    await fs.rm(work, { recursive: true, force: true });
  });

  function connections(): number {
    return running.records.filter((r) => r.msg === 'connected').length;
  }

  it('runs commands from a pipe over one connection, with no prompt noise', async () => {
    const before = connections();
    const script = ['put a.txt', 'put "a.txt" docs/renamed.txt', 'ls docs', 'get docs/renamed.txt copy.txt', 'rm a.txt docs/renamed.txt', 'lls', 'quit', 'ls'];
    const result = await runCli(['shell', address], { cwd: work, input: `${script.join('\n')}\n` });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    const lines = result.stdout.split('\n');
    assert.match(lines[0]!, /^stored a\.txt {2}13 B {2}sha256 [0-9a-f]{64} /);
    assert.match(lines[1]!, /^stored docs\/renamed\.txt {2}13 B /);
    assert.match(lines[2]!, / {2}13 {2}[0-9a-f]{12} {2}docs\/renamed\.txt$/);
    assert.match(lines[3]!, /^saved copy\.txt from docs\/renamed\.txt {2}13 B /);
    assert.equal(lines[4], 'removed a.txt');
    assert.equal(lines[5], 'removed docs/renamed.txt');
    assert.ok(lines.includes('13 B  copy.txt'), 'lls lists the local folder');
    assert.doesNotMatch(result.stdout, /ferry>|connected to/);
    assert.equal(await fs.readFile(path.join(work, 'copy.txt'), 'utf8'), 'hello from a\n');
    assert.equal(connections() - before, 1, 'one connection for the whole session');
  });

  it('prints one line per failed command, goes on, and exits 1', async () => {
    const before = connections();
    const script = ['get missing.txt', 'frobnicate', 'put not-here.txt', 'lcd /nonexistent-folder', 'get "unterminated', 'rm', 'ls'];
    const result = await runCli(['shell', address], { cwd: work, input: `${script.join('\n')}\n` });
    assert.equal(result.code, 1);
    assert.deepEqual(result.stderr.trimEnd().split('\n'), [
      'get: no file named "missing.txt"',
      'frobnicate: unknown command (commands: ls, cd, pwd, stat, put, get, rm, lls, lcd, lpwd, help, quit, exit)',
      `put: no such local file: ${path.join(work, 'not-here.txt')}`,
      'lcd: no such local folder: /nonexistent-folder',
      'shell: unterminated " quote',
      'rm: usage: rm [-r] NAME...',
    ]);
    assert.match(result.stdout, /report-2026\.txt/, 'the shell went on to run ls');
    assert.equal(connections() - before, 1);
  });

  it('takes the server from FERRY_SERVER, or asks for it', async () => {
    const fromEnv = await runCli(['shell'], { cwd: work, input: 'ls\n', env: { FERRY_SERVER: address } });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
    assert.match(fromEnv.stdout, /report-2026\.txt/);
    const asked = await runCli(['shell'], { cwd: work, input: `${address}\nls\n` });
    assert.equal(asked.code, 0, asked.stderr);
    assert.match(asked.stdout, /report-2026\.txt/);
  });

  it('fails with one line when the server cannot be reached', async () => {
    const result = await runCli(['shell', `127.0.0.1:${await freePort()}`], { input: 'ls\n' });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^ferry: connection refused by 127\.0\.0\.1:\d+.*\n$/);
    const bad = await runCli(['shell', 'host:notaport'], { input: '' });
    assert.equal(bad.code, 2);
  });

  it('on a terminal: shows the prompt and completes commands and remote names with Tab', async () => {
    const download = path.join(work, 'tty');
    await fs.mkdir(download);
    // util-linux `script` gives the shell a pseudo-terminal; the test types into it.
    const tty = spawnWatched('script', ['-qfec', `'${process.execPath}' '${CLI}' shell ${address}`, '/dev/null'], {
      cwd: download,
      env: { TERM: 'xterm' },
    });
    const screen = (): string => screenText(tty.stdout);
    const waitForScreen = async (pattern: RegExp, what: string): Promise<void> => {
      const deadline = Date.now() + 5000;
      while (!pattern.test(screen())) {
        if (Date.now() > deadline || tty.process.exitCode !== null) throw new Error(`no ${what} on screen: ${JSON.stringify(screen())}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    try {
      await waitForScreen(/connected to .* type help for commands\nferry> $/, 'prompt');
      tty.process.stdin!.write('he\t');
      await waitForScreen(/ferry> help $/, 'completed command');
      tty.process.stdin!.write('\r');
      await waitForScreen(/Commands \(names with spaces[\s\S]*ferry> $/, 'help output and a new prompt');
      tty.process.stdin!.write('get rep\t');
      await waitForScreen(/ferry> get report-2026\.txt$/, 'completed remote name');
      tty.process.stdin!.write('\r');
      await waitForScreen(/saved report-2026\.txt from report-2026\.txt {2}18 B .*\nferry> $/, 'the download');
      assert.match(screen(), /get report-2026\.txt \[[^\]]*\] 100% 18 B\/18 B/, 'a progress bar was drawn');
      tty.process.stdin!.write('quit\r');
      const exit = await tty.exited(5000);
      assert.equal(exit.code, 0, screen());
      assert.equal(await fs.readFile(path.join(download, 'report-2026.txt'), 'utf8'), 'quarterly numbers\n');
    } finally {
      tty.process.kill('SIGKILL');
    }
  });
});
