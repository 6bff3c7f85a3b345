import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from '../../src/index.js';
import { encodeMessage } from '../../src/protocol/index.js';
import { WireErrorCode } from '../../src/errors.js';
import { startFakeServer } from '../helpers/fake-server.js';
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
    assert.match(lines[0]!, /^stored a\.txt {2}13 B {2}blake3 [0-9a-f]{64} /);
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
      'frobnicate: unknown command (commands: ls, cd, pwd, stat, put, get, rm, lls, lcd, help, quit, exit)',
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

  it('takes the CLI\'s flags (-r, -f, --overwrite), keeps a remote folder (cd, pwd), has stat, and says mkdir/mv are not available', async () => {
    const tree = path.join(work, 'album');
    await fs.mkdir(path.join(tree, 'inner'), { recursive: true });
    await fs.writeFile(path.join(tree, 'one.txt'), 'one\n');
    await fs.writeFile(path.join(tree, 'inner', 'two.txt'), 'two\n');
    const script = [
      'put -r album',
      'put -r album',
      'cd album',
      'pwd',
      'ls',
      'stat one.txt',
      'cd inner',
      'get two.txt two-copy.txt',
      'cd ..',
      'cd /',
      'get -r album album-copy',
      'put --overwrite a.txt album/one.txt',
      'put -f a.txt album/one.txt',
      'rm -r album',
      'mkdir x',
      'mv a b',
      'cd nowhere',
      'help',
    ];
    const result = await runCli(['shell', address], { cwd: work, input: `${script.join('\n')}\n` });
    assert.equal(result.code, 1, 'mkdir, mv and cd nowhere fail');
    assert.deepEqual(result.stderr.trimEnd().split('\n'), [
      'mkdir: not available: ferry servers have no such operation (put creates folders; to rename, get and put again)',
      'mv: not available: ferry servers have no such operation (put creates folders; to rename, get and put again)',
      'cd: no folder named "nowhere"',
    ]);
    const out = result.stdout;
    assert.match(out, /^stored album\/inner\/two\.txt .*\nstored album\/one\.txt .*\nskipped album\/inner\/two\.txt is already stored, identical/m);
    assert.match(out, /\n\/album\n/, 'pwd shows the remote folder');
    assert.match(out, /\nname {4}album\/one\.txt\nsize {4}4 \(4 B\)\n/, 'stat resolves against the remote folder');
    assert.match(out, /saved two-copy\.txt from album\/inner\/two\.txt/);
    assert.equal(await fs.readFile(path.join(work, 'album-copy', 'inner', 'two.txt'), 'utf8'), 'two\n');
    assert.match(out, /stored album\/one\.txt {2}13 B .*\nskipped album\/one\.txt is already stored, identical/);
    assert.match(out, /removed album\n/);
    assert.match(out, /mkdir and mv are not available/);
  });

  /** Runs the shell on a pseudo-terminal (util-linux `script`), returning a way to type and read. */
  function onTerminal(server: string): { type(text: string): void; screen(): string; waitFor(pattern: RegExp, what: string): Promise<void>; exited(ms: number): Promise<{ code: number | null }>; kill(): void } {
    const tty = spawnWatched('script', ['-qfec', `'${process.execPath}' '${CLI}' shell ${server}`, '/dev/null'], { cwd: work, env: { TERM: 'xterm' } });
    const screen = (): string => screenText(tty.stdout);
    return {
      type: (text) => void tty.process.stdin!.write(text),
      screen,
      async waitFor(pattern, what) {
        const deadline = Date.now() + 5000;
        while (!pattern.test(screen())) {
          if (Date.now() > deadline || tty.process.exitCode !== null) throw new Error(`no ${what} on screen: ${JSON.stringify(screen())}`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      },
      exited: (ms) => tty.exited(ms),
      kill: () => void tty.process.kill('SIGKILL'),
    };
  }

  it('on a terminal: Ctrl-C at the prompt clears the line and prints one fresh prompt', async () => {
    const tty = onTerminal(address);
    try {
      await tty.waitFor(/type help for commands\nferry> $/, 'prompt');
      tty.type('half-typed');
      await tty.waitFor(/ferry> half-typed$/, 'typed text');
      tty.type('\u0003');
      await tty.waitFor(/ferry> half-typed\^C\nferry> $/, 'a fresh prompt');
      tty.type('pwd\r');
      await tty.waitFor(/\nferry> pwd\n\/\nferry> $/, 'pwd run from a clean line');
      assert.doesNotMatch(tty.screen(), /ferry> ferry>/);
      tty.type('quit\r');
      assert.equal((await tty.exited(5000)).code, 0, tty.screen());
    } finally {
      tty.kill();
    }
  });

  it('on a terminal: Ctrl-C during a transfer cancels it and returns to the prompt; the session goes on', async () => {
    let timer: NodeJS.Timeout | undefined;
    let connections = 0;
    const fake = await startFakeServer((m, socket) => {
      if (m.type === 'GET') {
        socket.write(encodeMessage({ type: 'GET_OK', id: m.id, size: 64 * 1024 * 1024, offset: 0, mtimeMs: 0, digest: Buffer.alloc(32) }));
        timer = setInterval(() => (socket.destroyed ? clearInterval(timer) : socket.write(Buffer.alloc(64 * 1024))), 50);
      } else if (m.type === 'LIST') {
        socket.write(encodeMessage({ type: 'ENTRIES', id: m.id, more: false, entries: [{ name: 'slow.bin', kind: 'file', size: 1, mtimeMs: 0, digest: Buffer.alloc(32) }] }));
      } else if (m.type === 'STAT') {
        socket.write(encodeMessage({ type: 'ERROR', id: m.id, code: WireErrorCode.NOT_FOUND, message: 'no file' }));
      }
    }, { onHello: (socket) => {
      connections++;
      socket.write(encodeMessage({ type: 'SERVER_HELLO', id: 0, version: 2, serverName: 'fake', maxFileSize: 2 ** 40, flags: 0 }));
    } });
    const tty = onTerminal(`127.0.0.1:${fake.port}`);
    try {
      await tty.waitFor(/type help for commands\nferry> $/, 'prompt');
      tty.type('get slow.bin\r');
      await tty.waitFor(/get slow\.bin \[/, 'a progress bar');
      tty.type('\u0003');
      await tty.waitFor(/get: cancelled \(run it again to resume\)\nferry> $/, 'the cancel and a new prompt');
      tty.type('ls\r');
      await tty.waitFor(/ {2}slow\.bin\nferry> $/, 'ls over the new connection');
      assert.equal(connections, 2, 'the cancelled transfer\'s connection was replaced');
      tty.type('quit\r');
      await tty.exited(5000);
    } finally {
      clearInterval(timer);
      tty.kill();
      await fake.close();
    }
  });
});
