import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect, WireErrorCode } from '../../src/index.js';
import { encodeMessage } from '../../src/protocol/index.js';
import { runCli, writeLoadReporter, type CliResult } from '../helpers/cli.js';
import { startFakeServer, type FakeServer } from '../helpers/fake-server.js';
import { randomData, sha256, startServer, tempDir, treeOf, type TestServer } from '../helpers/fixtures.js';

/**
 * A plain `ferry get NAME` or `ferry put FILE` of one file (issue 12: 100 gets or puts at once)
 * is run by the launcher from quick-get.js or quick-put.js, without commander or the ES module
 * loader. Its guarantees are the full CLI's: each command line here runs through the bin (the
 * quick path) and through main.mjs (the full CLI), in two fresh folders set up alike, and both
 * must print the same lines, exit the same way and leave the same files — a corrupt or cut
 * download leaves no file at the destination, a file already there is replaced only by a
 * verified download, a stored file only with --overwrite.
 */

const FULL_CLI = fileURLToPath(new URL('../../bin/cli/main.mjs', import.meta.url));

/** The full CLI, run directly (the launcher would send a plain get to the quick path). */
function runFullCli(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string }): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FULL_CLI, ...args], { env: { ...process.env, FERRY_SERVER: '', ...options.env }, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const bytes = Buffer.concat(out);
      resolve({ code, stdout: bytes.toString(), stderr, stdoutBytes: bytes });
    });
  });
}

/** What a run left behind, comparable between the two CLIs. */
interface Observed {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Every path in the folder the command ran in, with each file's sha256 and mode. */
  files: string[];
}

type Which = 'quick' | 'full';

describe('ferry get and put of one file on the quick path', () => {
  let dir: string;
  let hook: string;
  before(async () => {
    dir = await tempDir('ferry-quick-get-');
    hook = await writeLoadReporter(dir);
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  const env = (): NodeJS.ProcessEnv => ({ NODE_OPTIONS: `--require ${hook}` });

  function loadedBy(result: CliResult): string[] {
    const line = /^LOADED (.*)$/m.exec(result.stderr);
    assert.ok(line, `no module report: ${result.stderr}`);
    return JSON.parse(line[1]!) as string[];
  }

  const tookQuickPath = (result: CliResult): boolean => /^ESM false$/m.test(result.stderr);

  /**
   * Runs `ferry ARGS` through the bin and through the full CLI, each in a fresh folder made
   * by `setup`; checks that the bin took the quick path; returns both, normalised (the
   * folder's path, timings, and `quick/` or `full/`, which name each run's own stored files).
   */
  async function both(
    argsOf: string[] | ((which: Which) => string[]),
    setup: (cwd: string, which: Which) => Promise<void> = async () => undefined,
    extraEnv: NodeJS.ProcessEnv = {},
  ): Promise<{ quick: Observed; full: Observed; quickDir: string }> {
    const run = async (which: Which): Promise<{ observed: Observed; cwd: string; result: CliResult }> => {
      const cwd = await fs.mkdtemp(path.join(dir, `${which}-`));
      await setup(cwd, which);
      const args = typeof argsOf === 'function' ? argsOf(which) : argsOf;
      const result = which === 'quick' ? await runCli(args, { cwd, env: { ...env(), ...extraEnv }, binary: true }) : await runFullCli(args, { cwd, env: { ...env(), ...extraEnv } });
      const normal = (text: string): string =>
        text
          .split(cwd)
          .join('<cwd>')
          .split(`${which}/`)
          .join('<v>/')
          .replace(/^(LOADED|ESM) .*\n/gm, '')
          .replace(/ {2}(\d+ ms|[\d.]+ s) \([^,)]*/g, '  <time> (<rate>')
          .replace(/"seconds":[\d.]+/g, '"seconds":0')
          .replace(/"mtime":"[^"]*"/g, '"mtime":"<time>"');
      const stdout = args.includes('-') ? `sha256 ${sha256(result.stdoutBytes!)}` : normal(result.stdout);
      return { observed: { code: result.code, stdout, stderr: normal(result.stderr), files: await filesIn(cwd) }, cwd, result };
    };
    const quick = await run('quick');
    const full = await run('full');
    assert.ok(tookQuickPath(quick.result), `ferry ${(typeof argsOf === 'function' ? argsOf('quick') : argsOf).join(' ')} should take the quick path: ${quick.result.stderr}`);
    assert.ok(!tookQuickPath(full.result), 'the full CLI loads ES modules');
    return { quick: quick.observed, full: full.observed, quickDir: quick.cwd };
  }

  async function filesIn(folder: string): Promise<string[]> {
    const rows: string[] = [];
    for (const rel of await treeOf(folder)) {
      if (rel.endsWith('/')) {
        rows.push(rel);
        continue;
      }
      const file = path.join(folder, rel);
      const stats = await fs.stat(file);
      // A lock holds a pid and a nonce: only its presence is compared.
      const digest = rel.endsWith('.ferry-lock') ? 'lock' : createHash('sha256').update(await fs.readFile(file)).digest('hex').slice(0, 16);
      rows.push(`${rel} ${digest} ${(stats.mode & 0o777).toString(8)}`);
    }
    return rows;
  }

  describe('against a real server', () => {
    let server: TestServer;
    let s: string;
    const data = randomData(300 * 1024);
    const small = Buffer.from('hello\n');
    let storedMtime: Date;
    before(async () => {
      server = await startServer();
      s = `127.0.0.1:${server.address.port}`;
      const client = await connect({ port: server.address.port });
      await client.put(data, 'docs/a.bin', { mtimeMs: Date.UTC(2020, 0, 2, 3, 4, 5) });
      await client.put(small, 'docs/b.txt');
      storedMtime = (await client.stat('docs/a.bin')).mtime;
      await client.close();
    });
    after(() => server.stop());

    it('takes the quick path for a plain get, loading nothing it does not need', async () => {
      // esm/loader: main.mjs (commander, the full CLI); the rest is what a BLAKE3 download of one file does not need.
      const unneeded = /esm\/loader|^(tls|crypto|child_process|worker_threads|perf_hooks|readline|v8)$|cli-progress|commander|pino/;
      for (const args of [
        ['get', 'docs/a.bin', '-s', s],
        ['get', 'docs/a.bin', '-o', 'copy.bin', '--quiet', '-s', s],
        ['get', '--json', '-s', s, 'docs/a.bin', '--output=out/', '-p', '--no-resume', '--timeout', '5'],
        ['get', 'docs/a.bin', '-o', '-', '-q', `--server=${s}`, '--digest', 'auto'],
      ]) {
        const cwd = await fs.mkdtemp(path.join(dir, 'lean-'));
        const result = await runCli(args, { cwd, env: env(), binary: true });
        assert.equal(result.code, 0, result.stderr);
        const written = args.includes('-') ? result.stdoutBytes! : await fs.readFile(path.join(cwd, args.includes('copy.bin') ? 'copy.bin' : args.includes('--output=out/') ? 'out/a.bin' : 'a.bin'));
        assert.ok(written.equals(data), `ferry ${args.join(' ')} wrote the file`);
        const loaded = loadedBy(result);
        assert.deepEqual(loaded.filter((m) => unneeded.test(m)), [], `ferry ${args.join(' ')} loaded modules it does not need`);
        assert.ok(loaded.some((m) => m.includes('blake-hash')), 'the download is verified with BLAKE3');
      }
      // --digest sha256: node:crypto, and still no worker thread for a small file.
      const sha = await runCli(['get', 'docs/a.bin', '-o', 'sha.bin', '--digest', 'sha256', '-s', s], { cwd: dir, env: env() });
      assert.equal(sha.code, 0, sha.stderr);
      assert.match(sha.stdout, /^saved sha\.bin from docs\/a\.bin {2}300\.0 KiB {2}sha256 /m);
      assert.deepEqual(loadedBy(sha).filter((m) => /esm\/loader|worker_threads|blake-hash/.test(m)), []);
    });

    it('leaves anything else to the full CLI', async () => {
      for (const args of [
        ['get', 'docs/a.bin', 'docs/b.txt', '-o', 'many/'],
        ['get', '-r', 'docs', '-o', 'tree'],
        ['get', 'docs/a.bin', '--parallel', '2'],
        ['get', 'docs/a.bin', '-o', 'x', '-o', 'y'],
        ['get', 'docs/a.bin', '--help'],
      ]) {
        const cwd = await fs.mkdtemp(path.join(dir, 'full-'));
        const result = await runCli([...args, '-s', s], { cwd, env: env() });
        assert.ok(!tookQuickPath(result), `ferry ${args.join(' ')} should go to the full CLI`);
      }
      const bad = await runCli(['get', 'docs/a.bin', '--bogus', '-s', s], { cwd: dir, env: env() });
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /^error: unknown option '--bogus'$/m);
      assert.ok(!tookQuickPath(bad));
    });

    const cases: { what: string; args: () => string[]; setup?: (cwd: string) => Promise<void>; check?: (quick: Observed, cwd: string) => Promise<void> | void }[] = [
      {
        what: 'a fresh download',
        args: () => ['get', 'docs/a.bin', '-s', s],
        check: (quick) => assert.match(quick.stdout, /^saved a\.bin from docs\/a\.bin {2}300\.0 KiB {2}blake3 [0-9a-f]{64} {2}<time> \(<rate>\)\n$/),
      },
      { what: 'as JSON, into a folder made for it', args: () => ['get', 'docs/a.bin', '-o', 'sub/', '--json', '-s', s] },
      {
        what: 'to stdout',
        args: () => ['get', 'docs/a.bin', '-o', '-', '-s', s],
        check: (quick) => {
          assert.equal(quick.stdout, `sha256 ${sha256(data)}`);
          assert.match(quick.stderr, /^saved stdout from docs\/a\.bin /);
        },
      },
      {
        what: 'a file already holding the bytes is left alone',
        args: () => ['get', 'docs/a.bin', '-s', s],
        setup: (cwd) => fs.writeFile(path.join(cwd, 'a.bin'), data),
        check: (quick) => assert.match(quick.stdout, /^skipped a\.bin already holds docs\/a\.bin, identical {2}300\.0 KiB {2}blake3 /),
      },
      {
        what: 'a different file is replaced, keeping its mode',
        args: () => ['get', 'docs/b.txt', '-o', 'b.txt', '-s', s],
        setup: (cwd) => fs.writeFile(path.join(cwd, 'b.txt'), 'old contents', { mode: 0o600 }),
        check: async (quick, cwd) => {
          assert.equal(await fs.readFile(path.join(cwd, 'b.txt'), 'utf8'), 'hello\n');
          assert.equal((await fs.stat(path.join(cwd, 'b.txt'))).mode & 0o777, 0o600);
        },
      },
      {
        what: '-p keeps the stored modification time',
        args: () => ['get', 'docs/a.bin', '-p', '-q', '-s', s],
        check: async (_quick, cwd) => assert.equal((await fs.stat(path.join(cwd, 'a.bin'))).mtimeMs, storedMtime.getTime()),
      },
      {
        what: 'an interrupted download is resumed after its prefix is checked',
        args: () => ['get', 'docs/a.bin', '-s', s],
        setup: (cwd) => fs.writeFile(path.join(cwd, 'a.bin.ferry-part'), data.subarray(0, 100 * 1024)),
        check: (quick) => {
          assert.match(quick.stderr, /^resuming at 102400 bytes: docs\/a\.bin$/m);
          assert.match(quick.stdout, /, resumed at 102400\)$/m);
        },
      },
      {
        what: '--no-resume starts over',
        args: () => ['get', 'docs/a.bin', '--no-resume', '-s', s],
        setup: (cwd) => fs.writeFile(path.join(cwd, 'a.bin.ferry-part'), data.subarray(0, 100 * 1024)),
        check: (quick) => assert.doesNotMatch(quick.stdout + quick.stderr, /resum/),
      },
      {
        what: 'a missing stored file: one line, exit 1, nothing written',
        args: () => ['get', 'docs/nope', '-o', 'nope.bin', '-s', s],
        check: (quick) => {
          assert.equal(quick.code, 1);
          assert.equal(quick.stderr, 'ferry: no file named "docs/nope"\n');
          assert.deepEqual(quick.files, []);
        },
      },
      {
        what: 'a missing local folder: one line naming it',
        args: () => ['get', 'docs/a.bin', '-o', 'no/such/x.bin', '-s', s],
        check: (quick) => {
          assert.equal(quick.code, 1);
          assert.equal(quick.stderr, 'ferry: cannot write no/such/x.bin: no such folder <cwd>/no/such\n');
        },
      },
      {
        what: 'another download to the same path in progress',
        args: () => ['get', 'docs/a.bin', '-s', s],
        setup: (cwd) => fs.writeFile(path.join(cwd, 'a.bin.ferry-lock'), `${process.pid} ${os.hostname()} test\n`),
        check: (quick) => {
          assert.equal(quick.code, 1);
          assert.match(quick.stderr, /^ferry: another download to <cwd>\/a\.bin is in progress \(by process \d+\); if there is none, remove <cwd>\/a\.bin\.ferry-lock\n$/);
        },
      },
      { what: 'a bad server address', args: () => ['get', 'docs/a.bin', '-s', 'localhost:99999'] },
      { what: 'no output name', args: () => ['get', '', '-s', s] },
    ];
    for (const c of cases) {
      it(`the same as the full CLI: ${c.what}`, async () => {
        const { quick, full, quickDir } = await both(c.args(), c.setup);
        assert.deepEqual(quick, full);
        await c.check?.(quick, quickDir);
      });
    }
  });

  describe('put, against a real server', () => {
    let server: TestServer;
    let s: string;
    const data = randomData(200 * 1024);
    const other = Buffer.from('other bytes\n');
    /** A stored file's bytes, or undefined. */
    const stored = (name: string): Promise<Buffer | undefined> => fs.readFile(path.join(server.root, name)).catch(() => undefined);
    const store = async (bytes: Buffer, name: string): Promise<void> => {
      const client = await connect({ port: server.address.port });
      await client.put(bytes, name, { overwrite: true });
      await client.close();
    };
    before(async () => {
      server = await startServer();
      s = `127.0.0.1:${server.address.port}`;
    });
    after(() => server.stop());

    const local = (cwd: string): Promise<void> => fs.writeFile(path.join(cwd, 'f.bin'), data);

    it('takes the quick path for a plain put, loading nothing it does not need', async () => {
      const unneeded = /esm\/loader|^(tls|crypto|child_process|worker_threads|perf_hooks|readline|v8)$|cli-progress|commander|pino/;
      const cwd = await fs.mkdtemp(path.join(dir, 'lean-put-'));
      await local(cwd);
      // A whole millisecond: -p of a sub-millisecond time fails in the full CLI too (the wire takes whole ms).
      await fs.utimes(path.join(cwd, 'f.bin'), new Date(), new Date(Date.UTC(2022, 1, 2)));
      for (const args of [
        ['put', 'f.bin', '--as', 'lean/a.bin', '-s', s],
        ['put', '--json', '-s', s, 'f.bin', '--as=lean/b.bin', '-p', '--no-resume', '--timeout', '5', '--overwrite'],
        ['put', 'f.bin', '-q', '--as', 'lean/c.bin', `--server=${s}`, '--rename'],
      ]) {
        const result = await runCli(args, { cwd, env: env() });
        assert.equal(result.code, 0, `ferry ${args.join(' ')}: ${result.stderr}`);
        assert.ok(tookQuickPath(result), `ferry ${args.join(' ')} should take the quick path`);
        assert.deepEqual(loadedBy(result).filter((m) => unneeded.test(m)), [], `ferry ${args.join(' ')} loaded modules it does not need`);
      }
      for (const name of ['lean/a.bin', 'lean/b.bin', 'lean/c.bin']) assert.ok((await stored(name))?.equals(data), name);
      for (const args of [['put', 'f.bin', 'f.bin'], ['put', '-r', '.', '--as', 'x'], ['put', '-', '--as', 'x'], ['put', 'f.bin', '--raw'], ['put', 'f.bin', '--parallel', '1'], ['put', 'f.bin', '--overwrite', '--rename']]) {
        const result = await runCli([...args, '-s', s], { cwd, env: env() });
        assert.ok(!tookQuickPath(result), `ferry ${args.join(' ')} should go to the full CLI`);
      }
    });

    const cases: { what: string; args: (which: Which) => string[]; setup?: (cwd: string, which: Which) => Promise<void>; check?: (quick: Observed) => Promise<void> | void }[] = [
      {
        what: 'a fresh upload',
        args: (which) => ['put', 'f.bin', '--as', `${which}/a.bin`, '-s', s],
        setup: local,
        check: async (quick) => {
          assert.match(quick.stdout, /^stored <v>\/a\.bin {2}200\.0 KiB {2}blake3 [0-9a-f]{64} {2}<time> \(<rate>\)\n$/);
          assert.ok((await stored('quick/a.bin'))?.equals(data));
        },
      },
      {
        what: 'named by the file, as JSON',
        args: () => ['put', 'f.bin', '--json', '-s', s],
        setup: async (cwd) => {
          await local(cwd);
          const client = await connect({ port: server.address.port });
          await client.remove('f.bin').catch(() => undefined);
          await client.close();
        },
      },
      {
        what: 'an identical stored file is left alone',
        args: (which) => ['put', 'f.bin', '--as', `${which}/b.bin`, '-s', s],
        setup: async (cwd, which) => {
          await local(cwd);
          await store(data, `${which}/b.bin`);
        },
        check: (quick) => assert.match(quick.stdout, /^skipped <v>\/b\.bin is already stored, identical {2}200\.0 KiB {2}blake3 /),
      },
      {
        what: 'a different stored file is not replaced without --overwrite',
        args: (which) => ['put', 'f.bin', '--as', `${which}/c.bin`, '-s', s],
        setup: async (cwd, which) => {
          await local(cwd);
          await store(other, `${which}/c.bin`);
        },
        check: async (quick) => {
          assert.equal(quick.code, 1);
          assert.equal(quick.stderr, 'ferry: "<v>/c.bin" already exists: use --overwrite to replace it, or --rename to keep both\n');
          assert.ok((await stored('quick/c.bin'))?.equals(other));
        },
      },
      {
        what: '--overwrite replaces it',
        args: (which) => ['put', 'f.bin', '--as', `${which}/d.bin`, '--overwrite', '-s', s],
        setup: async (cwd, which) => {
          await local(cwd);
          await store(other, `${which}/d.bin`);
        },
        check: async () => assert.ok((await stored('quick/d.bin'))?.equals(data)),
      },
      {
        what: '--rename keeps both',
        args: (which) => ['put', 'f.bin', '--as', `${which}/e.bin`, '--rename', '--json', '-s', s],
        setup: async (cwd, which) => {
          await local(cwd);
          await store(other, `${which}/e.bin`);
        },
        check: async (quick) => {
          assert.match(quick.stdout, /^\{"name":"<v>\/e \(1\)\.bin",/);
          assert.ok((await stored('quick/e (1).bin'))?.equals(data));
        },
      },
      {
        what: '-p keeps the local modification time',
        args: (which) => ['put', 'f.bin', '--as', `${which}/p.bin`, '-p', '-q', '-s', s],
        setup: async (cwd) => {
          await local(cwd);
          await fs.utimes(path.join(cwd, 'f.bin'), new Date(), new Date(Date.UTC(2021, 5, 6, 7, 8, 9)));
        },
        check: async () => assert.equal((await fs.stat(path.join(server.root, 'quick/p.bin'))).mtimeMs, Date.UTC(2021, 5, 6, 7, 8, 9)),
      },
      {
        what: 'a missing local file: one line, exit 1',
        args: () => ['put', 'nope.bin', '-s', s],
        check: (quick) => {
          assert.equal(quick.code, 1);
          assert.equal(quick.stderr, 'ferry: no such local file: nope.bin\n');
        },
      },
      {
        what: 'a folder without -r: one line, exit 1',
        args: () => ['put', 'sub', '-s', s],
        setup: (cwd) => fs.mkdir(path.join(cwd, 'sub')),
        check: (quick) => assert.equal(quick.stderr, 'ferry: sub is a folder: use -r to upload it with its contents\n'),
      },
      { what: 'a name the server refuses', args: () => ['put', 'f.bin', '--as', '../up.bin', '-s', s], setup: local },
    ];
    for (const c of cases) {
      it(`the same as the full CLI: ${c.what}`, async () => {
        const { quick, full } = await both(c.args, c.setup);
        assert.deepEqual(quick, full);
        await c.check?.(quick);
      });
    }
  });

  describe('against a server that requires a token', () => {
    let server: TestServer;
    let s: string;
    let tokens: string;
    const reader = 'r'.repeat(32);
    const writer = 'w'.repeat(32);
    before(async () => {
      tokens = await fs.mkdtemp(path.join(dir, 'tokens-'));
      await fs.writeFile(path.join(tokens, 'tokens'), `${reader} read\n${writer} write\n`, { mode: 0o600 });
      await fs.writeFile(path.join(tokens, 'reader'), `${reader}\n`);
      await fs.writeFile(path.join(tokens, 'writer'), `# the uploader's\n${writer}\n`);
      server = await startServer({ tokens: path.join(tokens, 'tokens') });
      s = `127.0.0.1:${server.address.port}`;
      const client = await connect({ port: server.address.port, token: writer });
      await client.put(Buffer.from('secret\n'), 'sec.txt');
      await client.close();
    });
    after(() => server.stop());

    const local = (cwd: string): Promise<void> => fs.writeFile(path.join(cwd, 'f.txt'), 'mine\n');
    const cases: { what: string; args: (which: Which) => string[]; setup?: (cwd: string, which: Which) => Promise<void>; env?: NodeJS.ProcessEnv; code: number }[] = [
      { what: 'get with --token-file', args: () => ['get', 'sec.txt', '--token-file', path.join(tokens, 'reader'), '-s', s], code: 0 },
      { what: 'get without a token', args: () => ['get', 'sec.txt', '-s', s], code: 1 },
      { what: 'get with a token file that has a comment line (a write token reads too)', args: () => ['get', 'sec.txt', '--token-file', path.join(tokens, 'writer'), '-s', s], code: 0 },
      { what: 'get with a token the server does not know', args: () => ['get', 'sec.txt', '-s', s], env: { FERRY_TOKEN: 'x'.repeat(32) }, code: 1 },
      { what: 'put with a read-only token', args: (which) => ['put', 'f.txt', '--as', `${which}/f.txt`, '--token-file', path.join(tokens, 'reader'), '-s', s], setup: local, code: 1 },
      { what: 'put with FERRY_TOKEN', args: (which) => ['put', 'f.txt', '--as', `${which}/f.txt`, '-s', s], setup: local, env: { FERRY_TOKEN: writer }, code: 0 },
      { what: 'an unreadable token file', args: () => ['get', 'sec.txt', '--token-file', 'no-such-file', '-s', s], code: 1 },
    ];
    for (const c of cases) {
      it(`the same as the full CLI: ${c.what}`, async () => {
        const { quick, full } = await both(c.args, c.setup, c.env);
        assert.deepEqual(quick, full);
        assert.equal(quick.code, c.code, quick.stderr);
      });
    }
  });

  describe('against a server that sends wrong or too few bytes', () => {
    const BODY = Buffer.from('the real bytes');
    let fake: FakeServer;
    let behaviour: 'corrupt' | 'cut';
    before(async () => {
      fake = await startFakeServer((m, socket) => {
        if (m.type === 'STAT') {
          // An existing destination is compared first: the stored file differs from it.
          socket.write(encodeMessage({ type: 'ENTRY', id: m.id, entry: { name: m.name, kind: 'file', size: 1000, mtimeMs: 0, digest: Buffer.alloc(32, 1) } }));
        } else if (m.type === 'GET' && behaviour === 'corrupt') {
          socket.write(encodeMessage({ type: 'GET_OK', id: m.id, size: BODY.length, offset: 0, mtimeMs: 0, digest: Buffer.alloc(32) }));
          socket.write(BODY);
        } else if (m.type === 'GET') {
          // 1000 bytes announced, 14 sent, then the connection drops.
          socket.write(encodeMessage({ type: 'GET_OK', id: m.id, size: 1000, offset: 0, mtimeMs: 0, digest: Buffer.alloc(32) }));
          socket.end(BODY, () => socket.destroy());
        } else {
          socket.write(encodeMessage({ type: 'ERROR', id: m.id, code: WireErrorCode.NOT_FOUND, message: 'no' }));
        }
      });
    });
    after(() => fake.close());

    const existing = (cwd: string): Promise<void> => fs.writeFile(path.join(cwd, 'file.bin'), 'the file that was here');
    for (const [what, kind, setup] of [
      ['a corrupt download leaves no file', 'corrupt', undefined],
      ['a corrupt download leaves the file that was there', 'corrupt', existing],
      ['a cut download leaves no file (its part is kept for a resume)', 'cut', undefined],
      ['a cut download leaves the file that was there', 'cut', existing],
    ] as const) {
      it(`the same as the full CLI: ${what}`, async () => {
        behaviour = kind;
        const { quick, full } = await both(['get', 'file.bin', '-s', `127.0.0.1:${fake.port}`, '--timeout', '5'], setup);
        assert.deepEqual(quick, full);
        assert.equal(quick.code, 1);
        assert.equal(quick.stdout, '');
        if (kind === 'corrupt') assert.equal(quick.stderr, "ferry: sha256 of the 14 bytes received does not match the server's: the download is corrupt\n");
        else assert.match(quick.stderr, /^ferry: .*closed the connection.*\n$/);
        const there = setup === undefined ? [] : [`file.bin ${sha256(Buffer.from('the file that was here')).slice(0, 16)}`];
        const part = kind === 'cut' ? [`file.bin.ferry-part ${sha256(BODY).slice(0, 16)}`] : [];
        assert.deepEqual(
          quick.files.map((row) => row.replace(/ [0-7]+$/, '')),
          [...there, ...part].sort(),
        );
      });
    }
  });

  describe('over TLS, against a real server', () => {
    let server: TestServer;
    let s: string;
    let fingerprint: string;
    let xdg: string;
    const data = randomData(100 * 1024);
    before(async () => {
      server = await startServer({ tls: true });
      s = `127.0.0.1:${server.address.port}`;
      fingerprint = server.server.tlsFingerprint!;
      const client = await connect({ port: server.address.port, tls: { fingerprint } });
      await client.put(data, 'docs/a.bin');
      await client.close();
      // A known_hosts that remembers this server, for the --tls runs that are not its first.
      xdg = await fs.mkdtemp(path.join(dir, 'xdg-'));
      await fs.mkdir(path.join(xdg, 'ferry'));
      await fs.writeFile(path.join(xdg, 'ferry', 'known_hosts'), `${s} ${fingerprint}\n`);
    });
    after(() => server.stop());

    it('takes the quick path for get and put with --tls or --fingerprint, and remembers a new host as the full CLI does', async () => {
      const cwd = await fs.mkdtemp(path.join(dir, 'tls-'));
      const firstXdg = await fs.mkdtemp(path.join(dir, 'xdg-first-'));
      const first = await runCli(['get', 'docs/a.bin', '--tls', '-s', s], { cwd, env: { ...env(), XDG_CONFIG_HOME: firstXdg }, binary: true });
      assert.equal(first.code, 0, first.stderr);
      assert.ok(tookQuickPath(first), first.stderr);
      assert.ok(loadedBy(first).includes('tls'), 'the download went over TLS');
      assert.match(first.stderr, new RegExp(`^ferry: first connection to ${s.replace(/\./g, '\\.')}; its certificate fingerprint ${fingerprint.replace(/[+/]/g, '\\$&')} is now remembered in `, 'm'));
      assert.ok((await fs.readFile(path.join(cwd, 'a.bin'))).equals(data));
      await fs.writeFile(path.join(cwd, 'f.bin'), data);
      const put = await runCli(['put', 'f.bin', '--as', 'up/f.bin', '--fingerprint', fingerprint, '-s', s], { cwd, env: env(), binary: true });
      assert.equal(put.code, 0, put.stderr);
      assert.ok(tookQuickPath(put), put.stderr);
      assert.ok((await fs.readFile(path.join(server.root, 'up', 'f.bin'))).equals(data));
    });

    const cases: { what: string; args: (which: Which) => string[]; setup?: (cwd: string, which: Which) => Promise<void>; check?: (quick: Observed) => void }[] = [
      { what: 'get from a remembered host', args: () => ['get', 'docs/a.bin', '--tls', '-s', s] },
      { what: 'get with a pinned fingerprint, as JSON', args: () => ['get', 'docs/a.bin', '--fingerprint', fingerprint, '--json', '-s', s] },
      {
        what: 'get with a wrong fingerprint: one line, exit 1, nothing written',
        args: () => ['get', 'docs/a.bin', '--fingerprint', `SHA256:${'A'.repeat(43)}`, '-s', s],
        check: (quick) => {
          assert.equal(quick.code, 1);
          assert.match(quick.stderr, /^ferry: server certificate fingerprint mismatch: [^\n]*\n$/);
          assert.deepEqual(quick.files, []);
        },
      },
      {
        what: 'put to a remembered host',
        args: (which) => ['put', 'f.bin', '--as', `${which}/f.bin`, '--tls', '-s', s],
        setup: (cwd) => fs.writeFile(path.join(cwd, 'f.bin'), data),
      },
    ];
    for (const c of cases) {
      it(`the same as the full CLI: ${c.what}`, async () => {
        const { quick, full } = await both(c.args, c.setup, { XDG_CONFIG_HOME: xdg });
        assert.deepEqual(quick, full);
        c.check?.(quick);
      });
    }
  });
});
