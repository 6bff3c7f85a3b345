import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect } from '../../src/index.js';
import { eventually, randomData, tempDir } from '../helpers/fixtures.js';

/**
 * The Dockerfile, built and run with podman: a file stored through the container is read
 * back, the health check passes, and `podman stop` (SIGTERM) ends ferry cleanly (exit 0).
 * Building takes minutes, so it runs only with FERRY_CONTAINER_TEST=1; FERRY_NODE_IMAGE names
 * another base image (e.g. one imported locally when Docker Hub is out of reach) and
 * FERRY_PODMAN_ISOLATION=chroot builds without an OCI runtime.
 */

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const BASE = process.env.FERRY_NODE_IMAGE ?? 'docker.io/library/node:20-slim';
const IMAGE = 'localhost/ferry:test';

function podman(args: string[], timeoutMs = 60_000): { ok: boolean; stdout: string; stderr: string } {
  const result = spawnSync('podman', args, { encoding: 'utf8', timeout: timeoutMs });
  return { ok: result.status === 0, stdout: result.stdout ?? '', stderr: (result.stderr ?? '') + (result.error ? String(result.error) : '') };
}

function firstLine(text: string): string {
  return text.trim().split('\n').find((l) => /error/i.test(l)) ?? text.trim().split('\n')[0] ?? '';
}

/** Why the container cannot be tested here, or undefined when it can. */
function unavailable(): string | undefined {
  if (process.env.FERRY_CONTAINER_TEST !== '1') return 'set FERRY_CONTAINER_TEST=1 to build and run the image with podman (takes minutes)';
  if (spawnSync('podman', ['--version']).error) return 'podman is not installed (apt-get install podman)';
  if (!podman(['image', 'exists', BASE]).ok) {
    const pull = podman(['pull', BASE], 20_000);
    if (!pull.ok) return `base image ${BASE} is not here and cannot be pulled: ${firstLine(pull.stderr)}`;
  }
  const probe = podman(['run', '--rm', BASE, 'node', '-e', '0'], 60_000);
  if (!probe.ok) return `podman cannot start containers on this machine: ${firstLine(probe.stderr)}`;
  return undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

describe('container image (Dockerfile)', () => {
  it('builds, stores a file through the container, is healthy and stops cleanly on SIGTERM', { timeout: 20 * 60_000 }, async (t: TestContext) => {
    const reason = unavailable();
    if (reason !== undefined) {
      t.skip(reason);
      return;
    }
    const isolation = process.env.FERRY_PODMAN_ISOLATION ? [`--isolation=${process.env.FERRY_PODMAN_ISOLATION}`] : [];
    const build = podman(['build', ...isolation, '--build-arg', `NODE_IMAGE=${BASE}`, '-t', IMAGE, REPO], 15 * 60_000);
    assert.ok(build.ok, build.stderr);

    const name = `ferry-test-${process.pid}`;
    const volume = `${name}-data`;
    const port = await freePort();
    const local = await tempDir();
    try {
      const run = podman(['run', '-d', '--name', name, '-p', `127.0.0.1:${port}:4455`, '-v', `${volume}:/data`, IMAGE]);
      assert.ok(run.ok, run.stderr);
      await eventually(() => podman(['logs', name]).stdout.includes('listening on 0.0.0.0:4455'), 20_000, 'the server in the container');

      const data = randomData(300_000);
      const client = await connect({ host: '127.0.0.1', port });
      await client.put(data, 'through/the-container.bin');
      await client.get('through/the-container.bin', path.join(local, 'copy.bin'));
      await client.close();
      assert.ok((await fs.readFile(path.join(local, 'copy.bin'))).equals(data));
      // On the volume, owned by the image's non-root user.
      const stat = podman(['exec', name, 'stat', '-c', '%U %s', '/data/through/the-container.bin']);
      assert.equal(stat.stdout.trim(), `node ${data.length}`);

      assert.ok(podman(['healthcheck', 'run', name]).ok, 'health check');

      assert.ok(podman(['stop', '-t', '20', name], 60_000).ok);
      assert.equal(podman(['inspect', '--format', '{{.State.ExitCode}}', name]).stdout.trim(), '0');
      assert.match(podman(['logs', name]).stdout, /"signal":"SIGTERM".*\n.*"msg":"stopped"/);
    } finally {
      podman(['rm', '-f', name]);
      podman(['volume', 'rm', '-f', volume]);
      await fs.rm(local, { recursive: true, force: true });
    }
  });
});
