import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from '../../src/index.js';
import { runCli, startServeProcess } from '../helpers/cli.js';
import { digestHex, randomData, sha256, startServer, tempDir, type TestServer } from '../helpers/fixtures.js';

/**
 * Where the BLAKE3 binding cannot load (no prebuilt binary for the platform), ferry still
 * works with SHA-256 and says so once. The child processes get a preload that makes loading
 * the binding (and its per-platform packages) fail the way a missing binary does, so the real
 * fallback path runs.
 */
describe('without the BLAKE3 binding', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let server: TestServer;

  before(async () => {
    dir = await tempDir();
    const blocker = path.join(dir, 'no-blake3.cjs');
    await fs.writeFile(
      blocker,
      `const Module = require('node:module');
const load = Module._load;
Module._load = function (request, ...rest) {
  if (request.startsWith('@napi-rs/blake-hash')) throw new Error('Cannot find native binding (simulated)');
  return load.call(this, request, ...rest);
};
`,
    );
    env = { NODE_OPTIONS: `--require ${blocker}` };
    server = await startServer();
  });
  after(async () => {
    await server.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('the CLI warns once and verifies with SHA-256', async () => {
    const data = randomData(200_000);
    const file = path.join(dir, 'a.bin');
    await fs.writeFile(file, data);
    const put = await runCli(['put', file, '-s', `127.0.0.1:${server.address.port}`], { env });
    assert.equal(put.code, 0, put.stderr);
    assert.match(put.stdout, new RegExp(`stored a\\.bin .* sha256 ${sha256(data)} `));
    const warnings = put.stderr.split('\n').filter((line) => line !== '');
    assert.equal(warnings.length, 1, put.stderr);
    assert.match(warnings[0]!, /^ferry: warning: BLAKE3 is unavailable \(.*simulated.*\); verifying with SHA-256/);
    const hash = await runCli(['hash', file], { env });
    assert.equal(hash.stdout, `sha256:${sha256(data)}  ${file}\n`, 'hash follows what a server would agree');
  });

  it('ls and stat show the server\'s BLAKE3 digests anyway: they compute none, so they neither need the binding nor warn', async () => {
    const data = randomData(3000);
    const client = await connect({ port: server.address.port });
    await client.put(data, 'shown.bin');
    await client.close();
    const s = `127.0.0.1:${server.address.port}`;
    const ls = await runCli(['ls', 'shown.bin', '--json', '-s', s], { env });
    assert.equal(ls.code, 0, ls.stderr);
    assert.equal(ls.stderr, '');
    assert.deepEqual(JSON.parse(ls.stdout).map((e: { algorithm: string; digest: string }) => [e.algorithm, e.digest]), [['blake3', digestHex('blake3', data)]]);
    const stat = await runCli(['stat', 'shown.bin', '-s', s, '--digest', 'sha256'], { env });
    assert.equal(stat.code, 0, stat.stderr);
    assert.match(stat.stdout, new RegExp(`^digest  sha256:${sha256(data)}$`, 'm'), '--digest sha256 still asks for SHA-256');
  });

  it('the server warns at start and agrees SHA-256 with every client', async () => {
    const serve = await startServeProcess(['--root', path.join(dir, 'store')], { env });
    try {
      assert.match(serve.output(), /BLAKE3 is unavailable/);
      const client = await connect({ port: serve.port });
      const data = randomData(1000);
      const put = await client.put(data, 'x.bin');
      assert.equal(put.algorithm, 'sha256');
      assert.equal(put.digest, sha256(data));
      await client.close();
    } finally {
      await serve.stop();
    }
  });
});
