import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generate } from 'selfsigned';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';

/** `ferry serve --check` as a real child process, on good and bad configurations. */

const DAY = 24 * 3600_000;

async function certificate(notBefore: number, notAfter: number): Promise<{ cert: string; key: string }> {
  const pair = await generate([{ name: 'commonName', value: 'ferry check test' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(notBefore),
    notAfterDate: new Date(notAfter),
  });
  return { cert: pair.cert, key: pair.private };
}

describe('ferry serve --check', () => {
  let dir: string;
  /** A port something else listens on. */
  let busy: net.Server;
  let busyPort: number;

  before(async () => {
    dir = await tempDir('ferry-check-');
    const good = await certificate(Date.now() - DAY, Date.now() + 30 * DAY);
    const other = await certificate(Date.now() - DAY, Date.now() + 30 * DAY);
    const expired = await certificate(Date.now() - 30 * DAY, Date.now() - DAY);
    await fs.writeFile(path.join(dir, 'cert.pem'), good.cert);
    await fs.writeFile(path.join(dir, 'key.pem'), good.key, { mode: 0o600 });
    await fs.writeFile(path.join(dir, 'other-key.pem'), other.key, { mode: 0o600 });
    await fs.writeFile(path.join(dir, 'expired-cert.pem'), expired.cert);
    await fs.writeFile(path.join(dir, 'expired-key.pem'), expired.key, { mode: 0o600 });
    await fs.writeFile(path.join(dir, 'tokens'), `${'a'.repeat(32)} write\n${'b'.repeat(32)} read\n`, { mode: 0o600 });
    await fs.writeFile(path.join(dir, 'open-tokens'), `${'c'.repeat(32)} write\n`, { mode: 0o644 });
    await fs.chmod(path.join(dir, 'open-tokens'), 0o644); // whatever the umask
    await fs.writeFile(path.join(dir, 'a-file'), 'not a folder');
    busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    busyPort = (busy.address() as net.AddressInfo).port;
  });
  after(async () => {
    await new Promise((resolve) => busy.close(resolve));
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function check(toml: string, args: string[] = []): Promise<{ code: number | null; stdout: string; lines: string[] }> {
    const file = path.join(dir, 'ferry.toml');
    await fs.writeFile(file, toml);
    const result = await runCli(['serve', '--config', file, '--check', ...args], { timeoutMs: 10_000 });
    return { code: result.code, stdout: result.stdout, lines: result.stderr.trim().split('\n').filter((l) => l !== '') };
  }

  it('a good configuration: one OK line, exit 0, nothing served or created', async () => {
    const { code, stdout, lines } = await check(
      ['port = 0', 'raw-port = 0', 'raw-anonymous = true', 'root = "new-store"', 'tokens = "tokens"', 'tls-cert = "cert.pem"', 'tls-key = "key.pem"'].join('\n'),
    );
    assert.deepEqual(lines, []);
    assert.equal(code, 0);
    const root = path.join(dir, 'new-store');
    assert.match(
      stdout,
      new RegExp(
        `^ferry: configuration OK: free on 127\\.0\\.0\\.1: port \\(any\\), raw-port \\(any\\); root ${root} \\(will be created\\); 2 tokens \\(mode 0600\\); TLS SHA256:\\S+ until \\d{4}-\\d\\d-\\d\\d\\n$`,
      ),
    );
    await assert.rejects(fs.stat(root), { code: 'ENOENT' }); // --check changes nothing
  });

  it('an existing root, no tokens, no TLS', async () => {
    await fs.mkdir(path.join(dir, 'store'), { recursive: true });
    const { code, stdout } = await check('root = "store"\nport = 0\n');
    assert.equal(code, 0);
    assert.equal(stdout, `ferry: configuration OK: free on 127.0.0.1: port (any); root ${path.join(dir, 'store')} writable; no tokens (anyone who reaches the port may read and write); no TLS\n`);
  });

  it('a bad configuration: one line per problem, exit 1', async () => {
    const { code, stdout, lines } = await check(
      [`port = ${busyPort}`, 'raw-port = 0', 'root = "a-file/store"', 'tokens = "open-tokens"', 'tls-cert = "cert.pem"', 'tls-key = "other-key.pem"', 'quota = "lots"'].join('\n'),
    );
    assert.equal(code, 1);
    assert.equal(stdout, '');
    const file = path.join(dir, 'ferry.toml');
    assert.deepEqual(lines, [
      `${file} line 7: invalid quota "lots": use a size of at least 1 byte, e.g. 1048576, 512K, 10M, 2G (at most 8 PiB)`,
      'the raw port cannot check tokens: add --raw-anonymous to accept anonymous raw uploads alongside --tokens',
      `--port ${busyPort}: 127.0.0.1:${busyPort} is already in use (another server, or this one already running)`,
      `--root ${path.join(dir, 'a-file', 'store')} cannot be created: ${path.join(dir, 'a-file')} is not a folder`,
      `--tokens ${path.join(dir, 'open-tokens')} is open to group or others (mode 0644): chmod 600 ${path.join(dir, 'open-tokens')}`,
      `--tls-key ${path.join(dir, 'other-key.pem')} does not match the certificate in --tls-cert ${path.join(dir, 'cert.pem')}`,
      'configuration check failed: 6 problems',
    ].map((l) => `ferry: ${l}`));
  });

  it('the same port twice, a root that is a file, a missing tokens file, an expired certificate', async () => {
    const { code, lines } = await check(
      ['port = 0', 'root = "a-file"', 'tokens = "no-such-tokens"', 'tls-cert = "expired-cert.pem"', 'tls-key = "expired-key.pem"'].join('\n'),
      ['--port', String(busyPort), '--raw-port', String(busyPort), '--raw-anonymous'],
    );
    assert.equal(code, 1);
    assert.equal(lines.length, 6, lines.join('\n'));
    assert.equal(lines[0], `ferry: --port ${busyPort}: 127.0.0.1:${busyPort} is already in use (another server, or this one already running)`);
    assert.equal(lines[1], `ferry: --raw-port ${busyPort} is also --port: give each port its own number`);
    assert.equal(lines[2], `ferry: --root ${path.join(dir, 'a-file')} is not a folder`);
    assert.equal(lines[3], `ferry: --tokens ${path.join(dir, 'no-such-tokens')}: no such file`);
    assert.match(lines[4]!, new RegExp(`^ferry: --tls-cert ${path.join(dir, 'expired-cert.pem')} expired on `));
  });

  it('a host that is not on this machine', async () => {
    const { code, lines } = await check('port = 0\nroot = "store"\n', ['--host', '192.0.2.1']);
    assert.equal(code, 1);
    assert.equal(lines[0], 'ferry: --host 192.0.2.1 is not an address of this machine');
  });

  it('a tokens file with a bad line names the line, never the token', async () => {
    await fs.writeFile(path.join(dir, 'short-tokens'), 'secret1 write\n', { mode: 0o600 });
    const { code, lines } = await check('port = 0\nroot = "store"\ntokens = "short-tokens"\n');
    assert.equal(code, 1);
    assert.match(lines[0]!, /short-tokens line 1: the token is shorter than 16 characters/);
    assert.ok(!lines.join('\n').includes('secret1'));
  });
});
