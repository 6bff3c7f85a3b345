import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isFerryError, printableName, type FerryClient, type Progress, type TransferResult } from '../client/index.js';
import { complete, SHELL_COMMANDS, type Candidate } from '../services/shell-completion.js';
import { splitWords } from '../services/shell-words.js';
import { tableListing } from './commands/files.js';
import { duration, humanSize, rate } from './format.js';

/** Where a session writes, and how it shows progress (a bar on a terminal, nothing otherwise). */
export interface ShellIO {
  out(text: string): void;
  err(text: string): void;
  progress(label: string): Promise<{ update(progress: Progress): void; stop(): void }>;
}

export type Outcome = 'continue' | 'quit';

const HELP = `Commands (names with spaces: quote them or use \\ before the space):
  ls [PREFIX]              list remote files, optionally only under PREFIX
  put [-f] LOCAL [REMOTE]  upload LOCAL (as REMOTE; -f replaces an existing file)
  get REMOTE [LOCAL]       download REMOTE (to LOCAL, a file or a folder)
  rm NAME...               remove remote files
  lls [DIR]                list the local folder
  lcd [DIR]                change the local folder (default: your home folder)
  help                     this list
  quit, exit               leave (so does Ctrl-D)
`;

/** A usage mistake in one shell command: reported like any failure, but with no command prefix noise. */
class CommandError extends Error {}

/**
 * The shell's command interpreter: one line in, its output out, over one client connection
 * that lives as long as the session. A failed command prints one line and counts in
 * `failures`; losing the connection ends the session.
 */
export class ShellSession {
  failures = 0;
  private localDir: string;

  constructor(
    private readonly client: FerryClient,
    private readonly io: ShellIO,
    localDir = process.cwd(),
  ) {
    this.localDir = localDir;
  }

  get localFolder(): string {
    return this.localDir;
  }

  /** Runs one command line. */
  async run(line: string): Promise<Outcome> {
    const split = splitWords(line);
    if (!split.ok) return this.fail('shell', split.reason);
    const [command, ...args] = split.words;
    if (command === undefined || command.startsWith('#')) return 'continue';
    try {
      switch (command) {
        case 'ls':
          await this.ls(args);
          break;
        case 'put':
          await this.put(args);
          break;
        case 'get':
          await this.get(args);
          break;
        case 'rm':
          await this.rm(args);
          break;
        case 'lls':
          await this.lls(args);
          break;
        case 'lcd':
          await this.lcd(args);
          break;
        case 'help':
        case '?':
          this.io.out(HELP);
          break;
        case 'quit':
        case 'exit':
        case 'bye':
          return 'quit';
        default:
          return this.fail(printableName(command), `unknown command (commands: ${SHELL_COMMANDS.join(', ')})`);
      }
    } catch (error) {
      if (isFerryError(error) && error.fatal) {
        this.fail(command, `${error.message} (connection lost: ending the session)`);
        return 'quit';
      }
      return this.fail(command, errorText(error));
    }
    return 'continue';
  }

  /** readline completer: commands, then remote or local names depending on the command. */
  complete(line: string): Promise<[string[], string]> {
    return complete(line, {
      remote: async (dir) =>
        (await this.client.list(dir, { recursive: false })).map((e): Candidate => ({ name: e.name, folder: e.kind === 'folder' })),
      local: async (dir) =>
        (await fs.readdir(path.resolve(this.localDir, dir), { withFileTypes: true })).map(
          (d): Candidate => ({ name: d.name, folder: d.isDirectory() }),
        ),
    });
  }

  private fail(command: string, message: string): Outcome {
    this.failures++;
    this.io.err(`${command}: ${message}\n`);
    return 'continue';
  }

  private local(file: string): string {
    return path.resolve(this.localDir, file.startsWith('~/') ? path.join(os.homedir(), file.slice(2)) : file);
  }

  private async ls(args: string[]): Promise<void> {
    expectArgs(args, 0, 1, 'ls [PREFIX]');
    this.io.out(tableListing(await this.client.list(args[0] ?? '')));
  }

  private async put(args: string[]): Promise<void> {
    const overwrite = args[0] === '-f';
    const rest = overwrite ? args.slice(1) : args;
    expectArgs(rest, 1, 2, 'put [-f] LOCAL [REMOTE]');
    const source = this.local(rest[0]!);
    let name = rest[1] ?? path.basename(source);
    if (name.endsWith('/')) name += path.basename(source); // "put a.txt docs/" → docs/a.txt
    const result = await this.transfer(`put ${printableName(name)}`, (onProgress) =>
      this.client.put(source, name, { overwrite, onProgress }),
    );
    this.report('stored', result);
  }

  private async get(args: string[]): Promise<void> {
    expectArgs(args, 1, 2, 'get REMOTE [LOCAL]');
    const name = args[0]!;
    const base = path.posix.basename(name);
    let target = this.local(args[1] ?? base);
    if ((await fs.stat(target).catch(() => undefined))?.isDirectory()) target = path.join(target, base);
    const result = await this.transfer(`get ${printableName(name)}`, (onProgress) => this.client.get(name, target, { onProgress }));
    this.report(`saved ${path.relative(this.localDir, target) || target} from`, result);
  }

  private async rm(args: string[]): Promise<void> {
    expectArgs(args, 1, Infinity, 'rm NAME...');
    for (const name of args) {
      await this.client.remove(name);
      this.io.out(`removed ${printableName(name)}\n`);
    }
  }

  private async lls(args: string[]): Promise<void> {
    expectArgs(args, 0, 1, 'lls [DIR]');
    const dir = this.local(args[0] ?? '.');
    const entries = await fs.readdir(dir, { withFileTypes: true });
    const rows: string[][] = [];
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const stats = await fs.stat(path.join(dir, entry.name)).catch(() => undefined);
      const folder = stats?.isDirectory() ?? entry.isDirectory();
      rows.push([folder ? '-' : humanSize(stats?.size ?? 0), `${printableName(entry.name)}${folder ? '/' : ''}`]);
    }
    const width = Math.max(0, ...rows.map((r) => r[0]!.length));
    this.io.out(rows.map((r) => `${r[0]!.padStart(width)}  ${r[1]}\n`).join(''));
  }

  private async lcd(args: string[]): Promise<void> {
    expectArgs(args, 0, 1, 'lcd [DIR]');
    const dir = args[0] === undefined ? os.homedir() : this.local(args[0]);
    const stats = await fs.stat(dir).catch(() => undefined);
    if (!stats) throw new CommandError(`no such local folder: ${dir}`);
    if (!stats.isDirectory()) throw new CommandError(`${dir} is not a folder`);
    this.localDir = dir;
  }

  private async transfer(label: string, run: (onProgress: (p: Progress) => void) => Promise<TransferResult>): Promise<TransferResult & { ms: number }> {
    const bar = await this.io.progress(label);
    const started = performance.now();
    try {
      const result = await run((p) => bar.update(p));
      return { ...result, ms: performance.now() - started };
    } finally {
      bar.stop();
    }
  }

  private report(verb: string, result: TransferResult & { ms: number }): void {
    this.io.out(
      `${verb} ${printableName(result.name)}  ${humanSize(result.size)}  sha256 ${result.sha256}  ${duration(result.ms)} (${rate(result.size, result.ms)})\n`,
    );
  }
}

function expectArgs(args: string[], min: number, max: number, usage: string): void {
  if (args.length < min || args.length > max) throw new CommandError(`usage: ${usage}`);
}

function errorText(error: unknown): string {
  if (isFerryError(error) || error instanceof CommandError) return error.message;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const file = (error as NodeJS.ErrnoException | undefined)?.path;
  if (code === 'ENOENT') return `no such local file or folder: ${file ?? '?'}`;
  if (code === 'EACCES' || code === 'EPERM') return `permission denied: ${file ?? '?'}`;
  if (code === 'ENOTDIR') return `not a folder: ${file ?? '?'}`;
  if (code === 'EISDIR') return `${file ?? 'that'} is a folder`;
  return error instanceof Error ? error.message : String(error);
}
