import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Command } from 'commander';
import { connect } from '../../src/index.js';
import { applyConfigFile, configKeys, keyLines } from '../../src/cli/config.js';
import { runCli, startServeProcess } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';

/** A command shaped like `ferry serve` (a few of its options, the same kinds). */
function serveLike(): Command {
  return new Command('serve')
    .exitOverride()
    .option('--host <host>', 'address', '127.0.0.1')
    .option('-p, --port <port>', 'port', '4455')
    .option('--root <dir>', 'root', './ferry-data')
    .option('--name <name>', 'server name')
    .option('--no-fsync', 'skip fsync')
    .option('--tls', 'TLS')
    .option('--tokens <file>', 'tokens file')
    .option('--max-file-size <bytes>', 'largest upload')
    .option('--config <file>', 'config file')
    .option('--check', 'check only');
}

describe('config file: keys and precedence', () => {
  let dir: string;
  before(async () => (dir = await tempDir('ferry-config-')));
  after(async () => fs.rm(dir, { recursive: true, force: true }));

  async function load(toml: string, argv: string[]): Promise<{ command: Command; problems: string[] }> {
    const file = path.join(dir, 'ferry.toml');
    await fs.writeFile(file, toml);
    const command = serveLike();
    command.action(() => undefined);
    await command.parseAsync(['--config', file, ...argv], { from: 'user' });
    return { command, problems: applyConfigFile(command) };
  }

  it('has one key per flag, --no-x as x, and none for --config or --check', () => {
    assert.deepEqual([...configKeys(serveLike()).keys()], ['host', 'port', 'root', 'name', 'fsync', 'tls', 'tokens', 'max-file-size']);
  });

  it('a flag added to the command gets its key with no other code', async () => {
    const file = path.join(dir, 'later.toml');
    await fs.writeFile(file, 'http-port = 8080\ndigest = "blake3"\n');
    const command = serveLike().option('--http-port <port>', 'HTTP door').option('--digest <algorithm>', 'digest');
    command.action(() => undefined);
    await command.parseAsync(['--config', file], { from: 'user' });
    assert.deepEqual(applyConfigFile(command), []);
    assert.equal(command.opts().httpPort, '8080');
    assert.equal(command.opts().digest, 'blake3');
  });

  it('the file beats the defaults, the command line beats the file', async () => {
    const { command, problems } = await load('port = 5000\nname = "from-file"\nfsync = false\ntls = true\nmax-file-size = "10M"\n', ['--port', '6000', '--tls']);
    assert.deepEqual(problems, []);
    const options = command.opts();
    assert.equal(options.port, '6000'); // command line
    assert.equal(command.getOptionValueSource('port'), 'cli');
    assert.equal(options.name, 'from-file');
    assert.equal(command.getOptionValueSource('name'), 'config');
    assert.equal(options.fsync, false); // fsync = false is --no-fsync
    assert.equal(options.maxFileSize, '10M');
    assert.equal(options.host, '127.0.0.1'); // neither: the default
    assert.equal(command.getOptionValueSource('host'), 'default');
  });

  it('a boolean flag on the command line beats the file', async () => {
    const { command } = await load('fsync = true\n', ['--no-fsync']);
    assert.equal(command.opts().fsync, false);
  });

  it('paths are relative to the config file\'s folder', async () => {
    const { command } = await load('root = "store"\ntokens = "/etc/ferry/tokens"\n', []);
    assert.equal(command.opts().root, path.join(dir, 'store'));
    assert.equal(command.opts().tokens, '/etc/ferry/tokens');
  });

  it('finds each key\'s line, past comments, tables and multi-line strings', () => {
    const lines = keyLines('# c\nport = 1\nname = """\nroot = 2\n"""\n"quoted-key" = 3\nroot = 4\n[table]\nx = 1\na.b = 2\n');
    assert.equal(lines.get('port'), 2);
    assert.equal(lines.get('name'), 3);
    assert.equal(lines.get('root'), 7); // line 4 is inside the string
    assert.equal(lines.get('quoted-key'), 6);
    assert.equal(lines.get('table'), 8);
    assert.equal(lines.get('a'), 10);
  });
});

describe('config file: errors', () => {
  let dir: string;
  before(async () => (dir = await tempDir('ferry-config-')));
  after(async () => fs.rm(dir, { recursive: true, force: true }));

  async function serveWith(toml: string): Promise<{ code: number | null; lines: string[] }> {
    const file = path.join(dir, 'bad.toml');
    await fs.writeFile(file, toml);
    const result = await runCli(['serve', '--config', file], { cwd: dir });
    return { code: result.code, lines: result.stderr.trim().split('\n').map((l) => l.replace(file, 'FILE')) };
  }

  it('names every unknown key, wrong type and bad value with its line, and does not serve', async () => {
    const { code, lines } = await serveWith(
      ['# ferry', 'prot = 4455', 'tls = "yes"', 'port = 70000', 'max-file-size = "10Q"', 'name = ["a"]', 'root = 12', 'totally-unknown = 1', '[server]', 'x = 1'].join('\n'),
    );
    assert.equal(code, 2);
    assert.deepEqual(lines, [
      'ferry: FILE line 2: unknown key "prot" (did you mean "port"?)',
      'ferry: FILE line 3: tls: expected true or false, got "yes"',
      'ferry: FILE line 4: invalid port "70000": use a whole number from 0 to 65535',
      'ferry: FILE line 5: invalid max-file-size "10Q": use a size of at least 1 byte, e.g. 1048576, 512K, 10M, 2G (at most 8 PiB)',
      'ferry: FILE line 6: name: expected a string or a number, got a list',
      'ferry: FILE line 8: unknown key "totally-unknown": keys are the flags of ferry serve --help without "--"',
      'ferry: FILE line 9: unknown key "server": the file has no tables or dotted keys, only top-level keys',
    ]);
  });

  it('--config and --check are not keys', async () => {
    const { code, lines } = await serveWith('config = "other.toml"\n');
    assert.equal(code, 2);
    assert.match(lines[0]!, /^ferry: FILE line 1: unknown key "config"/);
  });

  it('a TOML syntax error names its line', async () => {
    const { code, lines } = await serveWith('port = 4455\nroot = "unterminated\n');
    assert.equal(code, 2);
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^ferry: FILE line 2: not valid TOML: /);
  });

  it('a missing file is one line', async () => {
    const result = await runCli(['serve', '--config', path.join(dir, 'nope.toml')]);
    assert.equal(result.code, 2);
    assert.equal(result.stderr, `ferry: cannot read config file ${path.join(dir, 'nope.toml')}: no such file\n`);
  });
});

describe('ferry serve --config (child process)', () => {
  let dir: string;
  before(async () => (dir = await tempDir('ferry-config-')));
  after(async () => fs.rm(dir, { recursive: true, force: true }));

  it('serves with the file\'s settings, under the flags given', async () => {
    const file = path.join(dir, 'ferry.toml');
    // startServeProcess adds --port 0 on the command line: it must beat the file's port.
    await fs.writeFile(file, 'port = 1\nroot = "store"\nname = "from-file"\nmax-file-size = "1K"\nfsync = false\n');
    const server = await startServeProcess(['--config', file, '--name', 'from-flag'], { cwd: '/' });
    try {
      const client = await connect({ host: '127.0.0.1', port: server.port });
      try {
        assert.equal(client.serverName, 'from-flag');
        assert.equal(client.maxFileSize, 1024);
        await client.put(Buffer.from('hello'), 'a.txt');
        await assert.rejects(client.put(Buffer.alloc(2048), 'big.bin'), { code: 'TOO_LARGE' });
      } finally {
        await client.close();
      }
      // root = "store" is beside the config file, not in the server's working folder (/).
      assert.equal(await fs.readFile(path.join(dir, 'store', 'a.txt'), 'utf8'), 'hello');
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });
});
