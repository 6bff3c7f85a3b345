import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import vm from 'node:vm';
import { connect } from '../../src/index.js';
import { CLI, runCli, startServeProcess, writeLoadReporter } from '../helpers/cli.js';
import { startServer, tempDir } from '../helpers/fixtures.js';

/**
 * The bin's loading structure (issue 12: `ferry --version` and `ferry ls` start as fast as
 * `node -e 0`): `--version` is answered by the CommonJS launcher before the ES module loader,
 * commander (child_process) or the client (tls, crypto) load; a plain `ls` or `stat` by
 * quick.js, the listing client alone, compiled from its code cache. (net loads for stdout when
 * it is a pipe.) Timing itself is measured by `npm run bench`.
 */
describe('CLI start-up', () => {
  it('answers --version and -V without loading ES modules, commander or the client', async () => {
    const dir = await tempDir('ferry-startup-');
    try {
      const hook = path.join(dir, 'report-loaded.cjs');
      await fs.writeFile(
        hook,
        "process.on('exit', () => require('node:fs').writeSync(2, 'LOADED ' + JSON.stringify(process.moduleLoadList.filter((m) => /esm\\/loader|NativeModule (tls|crypto|child_process)$/.test(m))) + '\\n'));\n",
      );
      const pkg = JSON.parse(await fs.readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
      for (const flag of ['--version', '-V']) {
        const result = await runCli([flag], { env: { NODE_OPTIONS: `--require ${hook}` } });
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stdout, `${pkg.version}\n`);
        assert.match(result.stderr, /^LOADED \[\]$/m, `${flag} loaded more than the launcher: ${result.stderr}`);
      }
      // anything else goes to the full CLI, which still knows --version
      const help = await runCli(['--version', '--help'], { env: { NODE_OPTIONS: `--require ${hook}` } });
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stderr, /esm\/loader/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('runs a plain ls and stat without the full CLI, and without modules they do not need', async () => {
    const dir = await tempDir('ferry-startup-');
    const server = await startServer();
    try {
      const client = await connect({ port: server.address.port });
      await client.put(Buffer.from('hello'), 'docs/a.txt');
      await client.close();
      const hook = await writeLoadReporter(dir);
      // esm/loader: main.mjs (commander, the full CLI); the rest is what listing does not need.
      const unneeded = /esm\/loader|^(tls|crypto|child_process|worker_threads|perf_hooks|fs\/promises|readline)$|blake-hash|cli-progress|commander|pino/;
      const s = `127.0.0.1:${server.address.port}`;
      for (const args of [['ls', '-s', s], ['ls', 'docs', '--json', '-s', s], ['stat', 'docs/a.txt', '-s', s, '--json']]) {
        const result = await runCli(args, { env: { NODE_OPTIONS: `--require ${hook}` } });
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, /docs\/a\.txt/);
        const loaded = JSON.parse(/^LOADED (.*)$/m.exec(result.stderr)![1]!) as string[];
        assert.deepEqual(loaded.filter((m) => unneeded.test(m)), [], `ferry ${args.join(' ')} loaded modules it does not need`);
      }
      // A mistake goes to the full CLI, which words it as before.
      const bad = await runCli(['ls', '--bogus'], { env: { NODE_OPTIONS: `--require ${hook}` } });
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /^error: unknown option '--bogus'$/m);
      assert.match(bad.stderr, /esm\/loader/);
    } finally {
      await server.stop();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('takes the quick path over TLS and with a token too (known_hosts, pinned fingerprint)', async () => {
    const dir = await tempDir('ferry-startup-');
    const token = 'r'.repeat(32);
    await fs.writeFile(path.join(dir, 'tokens'), `${token} read\n`, { mode: 0o600 });
    await fs.writeFile(path.join(dir, 'token'), `${token}\n`);
    const serve = await startServeProcess(['--root', path.join(dir, 'store'), '--tls', '--tokens', path.join(dir, 'tokens')]);
    try {
      const hook = path.join(dir, 'report-esm.cjs');
      await fs.writeFile(hook, "process.on('exit', () => require('node:fs').writeSync(2, 'ESM ' + process.moduleLoadList.some((m) => /esm\\/loader/.test(m)) + '\\n'));\n");
      const env = { NODE_OPTIONS: `--require ${hook}`, XDG_CONFIG_HOME: path.join(dir, 'config') };
      const s = `127.0.0.1:${serve.port}`;
      const tokenFile = path.join(dir, 'token');
      const first = await runCli(['ls', '--tls', '--token-file', tokenFile, '-s', s], { env });
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stderr, /^ferry: first connection to 127\.0\.0\.1:\d+; its certificate fingerprint SHA256:\S+ is now remembered in .*known_hosts$/m);
      assert.match(first.stderr, /^ferry: no files stored yet$/m);
      assert.match(await fs.readFile(path.join(dir, 'config', 'ferry', 'known_hosts'), 'utf8'), new RegExp(`^127\\.0\\.0\\.1:${serve.port} SHA256:`));
      const pinned = await runCli(['stat', 'none', '--fingerprint', serve.fingerprint!, '--token-file', tokenFile, '-s', s], { env });
      assert.equal(pinned.code, 1);
      assert.match(pinned.stderr, /^ferry: no file named "none"$/m);
      const noToken = await runCli(['ls', '--tls', '-s', s], { env });
      assert.equal(noToken.code, 1);
      assert.match(noToken.stderr, /^ferry: authentication required: the server needs a token/m);
      for (const result of [first, pinned, noToken]) assert.match(result.stderr, /^ESM false$/m, 'answered by quick.js');
    } finally {
      await serve.stop();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('the launcher compiles quick.js from a code cache V8 accepts', async () => {
    // The same wrapper as the launcher's, read from it: a cache made for another text is rejected.
    const launcher = await fs.readFile(CLI, 'utf8');
    const wrapper = /new \(require\('node:vm'\)\.Script\)\((".*?") \+ source \+ (".*?"),/.exec(launcher);
    assert.ok(wrapper, 'the launcher compiles quick.js with vm.Script');
    const file = path.join(path.dirname(CLI), 'quick.js');
    const script = new vm.Script(JSON.parse(wrapper[1]!) + (await fs.readFile(file, 'utf8')) + JSON.parse(wrapper[2]!), { filename: file, cachedData: await fs.readFile(`${file}.cache`) });
    assert.equal(script.cachedDataRejected, false);
  });
});
