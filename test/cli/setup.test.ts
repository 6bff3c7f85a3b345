import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/fixtures.js';

/** The checkout these tests were built from (they run from dist/test/cli/). */
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

function run(command: string, args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A tiny project built by the real build scripts: five entry points, so a build takes a moment. */
async function tinyProject(): Promise<string> {
  const dir = await tempDir('ferry-build-');
  await fs.mkdir(path.join(dir, 'scripts'));
  // The build scripts and the files they copy into the bin (every .mjs and .cjs beside them).
  for (const script of await fs.readdir(path.join(REPO, 'scripts'))) {
    if (/\.[mc]js$/.test(script)) await fs.copyFile(path.join(REPO, 'scripts', script), path.join(dir, 'scripts', script));
  }
  await fs.symlink(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  await fs.writeFile(path.join(dir, 'package.json'), '{ "type": "module" }\n');
  await fs.writeFile(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', rootDir: '.', outDir: 'dist', types: [], incremental: true, tsBuildInfoFile: 'dist/.tsbuildinfo' }, include: ['src'] }),
  );
  await fs.mkdir(path.join(dir, 'src', 'cli'), { recursive: true });
  await fs.mkdir(path.join(dir, 'src', 'io'), { recursive: true });
  await fs.writeFile(path.join(dir, 'src', 'cli', 'main.ts'), 'export const version = 1;\n');
  for (const quick of ['quick.ts', 'quick-get.ts', 'quick-put.ts']) await fs.writeFile(path.join(dir, 'src', 'cli', quick), 'export function run(): boolean {\n  return false;\n}\n');
  await fs.writeFile(path.join(dir, 'src', 'io', 'digester-thread.ts'), 'export const thread = 1;\n');
  return dir;
}

describe('set-up: the build and npm start', { timeout: 120_000 }, () => {
  it('builds beside dist/ and swaps, so dist/ is never half-built; prepare (--if-stale) skips a current dist/', async () => {
    const dir = await tinyProject();
    try {
      const first = await run(process.execPath, ['scripts/build.mjs'], dir);
      assert.equal(first.code, 0, first.stderr);
      const main = path.join(dir, 'dist', 'bin', 'cli', 'main.mjs'); // the CLI; main.js is the launcher
      assert.match(await fs.readFile(main, 'utf8'), /version = 1/);

      const before = await fs.stat(path.join(dir, 'dist'));
      const skipped = await run(process.execPath, ['scripts/build.mjs', '--if-stale'], dir);
      assert.equal(skipped.code, 0, skipped.stderr);
      assert.match(skipped.stdout, /dist\/ is up to date/);
      assert.equal((await fs.stat(path.join(dir, 'dist'))).ino, before.ino, 'dist/ untouched');

      // A source changes: the next build runs while something watches dist/ as a server would use it.
      await new Promise((resolve) => setTimeout(resolve, 20));
      await fs.writeFile(path.join(dir, 'src', 'cli', 'main.ts'), 'export const version = 2;\n');
      const seen = new Set<string>();
      const build = run(process.execPath, ['scripts/build.mjs', '--if-stale'], dir);
      let done = false;
      void build.then(() => (done = true));
      while (!done) {
        // dist/'s inode before and after looking at main.js: a rename in between is the swap itself.
        const distIno = (): Promise<number | undefined> => fs.stat(path.join(dir, 'dist')).then((st) => st.ino, () => undefined);
        const before = await distIno();
        const hasMain = await fs.stat(main).then(() => true, () => false);
        const after = await distIno();
        seen.add(before === undefined || before !== after ? 'swapping' : hasMain ? 'complete' : 'half-built');
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      assert.equal((await build).code, 0);
      assert.ok(!seen.has('half-built'), `dist/ was seen half-built: ${[...seen].join(', ')}`);
      assert.match(await fs.readFile(main, 'utf8'), /version = 2/, 'a stale dist/ is rebuilt');
      assert.deepEqual((await fs.readdir(dir)).filter((f) => f.startsWith('dist.')), [], 'no build folders left behind');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`npm start passes ${signal} on to the server, which stops (no orphan)`, async () => {
      const root = await tempDir('ferry-npm-start-');
      // Its own process group, so whatever npm leaves behind can be cleaned up by the test.
      const npm = spawn('npm', ['start', '--', '--port', '0', '--root', path.join(root, 'store')], { cwd: REPO, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      npm.stdout.on('data', (d: Buffer) => (output += d.toString()));
      npm.stderr.on('data', (d: Buffer) => (output += d.toString()));
      try {
        const deadline = Date.now() + 15_000;
        let port: number | undefined;
        while (port === undefined) {
          port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(output)?.[1]) || undefined;
          if (Date.now() > deadline) throw new Error(`server did not start: ${output}`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        process.kill(npm.pid!, signal); // npm itself, as `kill %1` does
        const stopBy = Date.now() + 10_000;
        while (!/\bstopped\b/.test(output)) {
          if (Date.now() > stopBy) throw new Error(`the server did not stop: ${output}`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const refused = await new Promise<boolean>((resolve) => {
          const probe = net.connect({ host: '127.0.0.1', port: port! });
          probe.once('connect', () => (probe.destroy(), resolve(false)));
          probe.once('error', () => resolve(true));
        });
        assert.ok(refused, 'nothing listens on the port any more');
      } finally {
        try {
          process.kill(-npm.pid!, 'SIGKILL');
        } catch {
          // the group is already gone
        }
        await fs.rm(root, { recursive: true, force: true });
      }
    });
  }
});
