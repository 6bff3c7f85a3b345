import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Command } from 'commander';
import fc from 'fast-check';
import { parseQuickCommand } from '../../src/cli/quick-args.js';
import { allCommands, buildProgram } from '../../src/cli/program.js';

/**
 * The launcher runs `ls`, `stat` and a plain `get` without commander when parseQuickCommand
 * accepts the command line: whatever it accepts, commander (program.ts's definitions) must read
 * the same way.
 */

type Parsed = { name: string; positional: string[]; options: Record<string, unknown> } | { error: string };

/** What commander makes of `ferry ARGS`: the ls/stat/get action's arguments, or its error. */
async function commanderParse(args: string[]): Promise<Parsed> {
  const program = buildProgram(() => undefined);
  let parsed: Parsed = { error: 'no action ran' };
  const quiet = (command: Command): void => {
    command.exitOverride();
    command.configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
  };
  quiet(program);
  for (const command of allCommands(program)) quiet(command);
  for (const name of ['ls', 'stat', 'get', 'put']) {
    program.commands
      .find((c) => c.name() === name)!
      .action((first: string | string[] | undefined, options: Record<string, unknown>) => {
        parsed = { name, positional: first === undefined ? [] : typeof first === 'string' ? [first] : first, options: defined(options) };
      });
  }
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (error) {
    return { error: String(error) };
  }
  return parsed;
}

function quickParse(args: string[]): Parsed | undefined {
  const quick = parseQuickCommand(args);
  if (quick === undefined) return undefined;
  return { name: quick.name, positional: quick.name === 'ls' ? (quick.prefix === undefined ? [] : [quick.prefix]) : [quick.file], options: defined(quick.options) };
}

function defined(options: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
}

describe('ls, stat and get without commander (quick-args)', () => {
  it('takes the plain command lines, read as commander reads them', async () => {
    const plain = [
      ['ls'],
      ['ls', '-s', '127.0.0.1:4455', '--json'],
      ['ls', 'photos/2026', '-l'],
      ['ls', '--long', '--server=h:1', 'a', '--timeout', '0.5', '--digest', 'sha256'],
      ['ls', '--tls', '--fingerprint', 'SHA256:abc', '--token-file', '/tmp/t'],
      ['stat', 'report.pdf'],
      ['stat', '--json', 'a/b.txt', '-s', '[::1]:9', '--timeout=3', '--digest=auto'],
      ['get', 'report.pdf'],
      ['get', 'a/b.txt', '-o', 'copy.txt', '-s', 'h:1'],
      ['get', '-o', '-', 'x.tar', '-q'],
      ['get', '--output=dir/', '--json', '--no-resume', '-p', 'a', '--token-file', '/tmp/t', '--digest', 'sha256', '--timeout', '9'],
      ['get', '--quiet', '--preserve', 'a', '--server', 'h'],
      ['put', 'report.pdf'],
      ['put', 'a.txt', '--as', 'x/y.txt', '--overwrite', '-q', '-s', 'h:2'],
      ['put', '--as=b', '--rename', '--json', '--no-resume', '-p', 'a', '--digest=sha256', '--token-file', 't', '--timeout=1'],
      ['get', 'a', '--tls'],
      ['get', 'a', '--fingerprint', 'SHA256:abc', '-o', 'b'],
      ['put', 'a', '--tls', '--fingerprint=SHA256:abc', '--as', 'b'],
    ];
    for (const args of plain) {
      const quick = quickParse(args);
      assert.notEqual(quick, undefined, `${args.join(' ')} should not need commander`);
      assert.deepEqual(quick, await commanderParse(args), args.join(' '));
    }
  });

  it('leaves help, mistakes and unusual forms to commander', () => {
    const others = [
      ['ls', '--help'],
      ['ls', '-h'],
      ['ls', '--bogus'],
      ['ls', 'a', 'b'],
      ['ls', '--json', '--json'],
      ['ls', '-s'],
      ['ls', '-s', '--json'],
      ['ls', '-lq'],
      ['ls', '--', '-x'],
      ['ls', '--timeout', 'abc'],
      ['ls', '--timeout', '-1'],
      ['ls', '--digest', 'md5'],
      ['ls', '--tls=yes'],
      ['ls', '--server='],
      ['stat'],
      ['stat', 'a', 'b'],
      ['get'],
      ['get', 'a', 'b'],
      ['get', '-r', 'a'],
      ['get', 'a', '--parallel', '2'],
      ['get', 'a', '-o'],
      ['get', 'a', '-o', '--json'],
      ['get', 'a', '-qp'],
      ['get', 'a', '--resume'],
      ['get', 'a', '--no-resume', '--no-resume'],
      ['get', '-s', '-', 'a'],
      ['put'],
      ['put', 'a', 'b'],
      ['put', '-'],
      ['put', '-', '--as', 'x'],
      ['put', '-r', 'dir'],
      ['put', 'a', '--raw'],
      ['put', 'a', '--parallel', '2'],
      ['put', 'a', '--overwrite', '--rename'],
      ['put', 'a', '-o', 'x'],
      ['rm', 'a'],
      ['--version'],
    ];
    for (const args of others) assert.equal(parseQuickCommand(args), undefined, args.join(' '));
  });

  it('never reads a command line differently from commander (random command lines)', async () => {
    const token = fc.constantFrom(
      'a', 'dir/', 'x y', '', '-', '--', '-s', '--server', '127.0.0.1:9', '--server=h:1', '-sh:1', '--timeout', '5', '0.001', '--timeout=0',
      '--tls', '--tls=1', '--fingerprint', 'SHA256:x', '--token-file', 'f', '--digest', 'sha256', 'md5', '--digest=auto',
      '--json', '-l', '--long', '-h', '--help', '-ls', '--bogus', '-V',
      '-o', '--output', '--output=-', '-q', '--quiet', '--no-resume', '--resume', '-p', '--preserve', '-r', '--parallel', '2', '-qp',
      '--as', '--as=x', '--overwrite', '--rename', '--raw',
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('ls', 'stat', 'get', 'put'), fc.array(token, { maxLength: 7 }), async (name, rest) => {
        const args = [name, ...rest];
        const quick = quickParse(args);
        if (quick !== undefined) assert.deepEqual(quick, await commanderParse(args), args.join(' '));
      }),
      { numRuns: 400 },
    );
  });
});
