import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CLI, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';

/** deploy/: the example configuration and the systemd unit. */

const DEPLOY = fileURLToPath(new URL('../../../deploy/', import.meta.url));

describe('deploy/ferry.toml', () => {
  let dir: string;
  before(async () => (dir = await tempDir('ferry-deploy-')));
  after(async () => fs.rm(dir, { recursive: true, force: true }));

  it('passes ferry serve --check', async () => {
    // Its ports may be taken on a shared test machine: flags beat the file.
    const result = await runCli(['serve', '--config', path.join(DEPLOY, 'ferry.toml'), '--check', '--port', '0', '--metrics-port', '0', '--root', path.join(dir, 'files')]);
    assert.equal(result.stderr, '');
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^ferry: configuration OK: free on 127\.0\.0\.1: port \(any\), metrics-port \(any\); /);
  });

  it('every key it mentions in a comment is a real key of the right type', async () => {
    const text = await fs.readFile(path.join(DEPLOY, 'ferry.toml'), 'utf8');
    const uncommented = text.replace(/^# ([a-z-]+ = )/gm, '$1');
    assert.notEqual(uncommented, text);
    const file = path.join(dir, 'all-keys.toml');
    await fs.writeFile(file, uncommented);
    const result = await runCli(['serve', '--config', file, '--check', '--port', '0', '--metrics-port', '0', '--root', path.join(dir, 'files')]);
    // The credentials exist only inside the service: those (and only those) are the problems.
    const problems = result.stderr.trim().split('\n');
    assert.equal(result.code, 1);
    assert.ok(problems.length > 0);
    for (const line of problems.slice(0, -1)) assert.match(line, /\/run\/credentials\/ferry\.service\/[a-z-]+: no such file$/);
  });
});

describe('deploy/ferry.service', () => {
  const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  const skip = analyze.error ? 'systemd-analyze is not installed (apt-get install systemd)' : false;

  it('is accepted by systemd-analyze verify, without a warning', { skip }, async () => {
    const dir = await tempDir('ferry-unit-');
    try {
      // verify checks that ExecStart exists: point it at this build's ferry.
      const unit = (await fs.readFile(path.join(DEPLOY, 'ferry.service'), 'utf8')).replaceAll('/usr/local/bin/ferry', CLI);
      const file = path.join(dir, 'ferry.service');
      await fs.writeFile(file, unit);
      const result = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(result.stderr, '');
      assert.equal(result.status, 0);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('runs ferry serve with the example config, hardened', async () => {
    const unit = await fs.readFile(path.join(DEPLOY, 'ferry.service'), 'utf8');
    const settings = new Set(unit.split('\n').filter((l) => /^[A-Z]/.test(l)));
    for (const line of [
      'ExecStart=/usr/local/bin/ferry serve --config /etc/ferry/ferry.toml',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'ProtectHome=yes',
      'PrivateTmp=yes',
      'DynamicUser=yes',
      'ReadWritePaths=/var/lib/ferry',
      'CapabilityBoundingSet=',
      'KillSignal=SIGTERM',
    ]) {
      assert.ok(settings.has(line), line);
    }
  });
});
