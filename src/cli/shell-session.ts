import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FerryError, isFerryError, printableName, type Entry, type FerryClient, type Progress } from '../client/index.js';
import { complete, SHELL_COMMANDS, type Candidate } from '../services/shell-completion.js';
import { splitWords } from '../services/shell-words.js';
import { statText, tableListing } from './commands/files.js';
import { download, storedCopy, type Outcome } from './commands/transfer.js';
import { duration, humanSize, rate } from './format.js';
import { localPathFor, walkLocalTree } from './local-tree.js';
import { prepareFolder } from './local-target.js';
import { userMessage } from './messages.js';

/** Where a session writes, and how it shows progress (a bar on a terminal, nothing otherwise). */
export interface ShellIO {
  out(text: string): void;
  err(text: string): void;
  progress(label: string): Promise<{ update(progress: Progress): void; stop(): void }>;
}

export type ShellOutcome = 'continue' | 'quit';

const HELP = `Commands (names with spaces: quote them or use \\ before the space):
  ls [-l] [FOLDER]              list remote files (in the remote folder, or FOLDER)
  cd [FOLDER]                   change the remote folder (.. goes up; no FOLDER: the top)
  pwd                           show the remote folder
  stat NAME                     show a remote file's size, time and digest
  put [-r] [-f] LOCAL [REMOTE]  upload LOCAL (a folder with -r) as REMOTE; -f (--overwrite)
                                replaces a different file; an identical one is skipped
  get [-r] REMOTE [LOCAL]       download REMOTE (a folder with -r) to LOCAL (a file or folder)
  rm [-r] NAME...               remove remote files (folders with -r)
  lls [DIR], lcd [DIR]          list or change the local folder
  help                          this list
  quit, exit                    leave (so does Ctrl-D)
Ctrl-C cancels the running transfer (run it again to resume) and returns to the prompt.
mkdir and mv are not available: ferry servers have no such operation (put creates folders;
to rename, get and put again).
`;

/** A usage mistake in one shell command: reported like any failure. */
class CommandError extends Error {}

/**
 * The shell's command interpreter: one line in, its output out, over one client connection
 * that lives as long as the session. A failed command prints one line and counts in
 * `failures`. Ctrl-C (`cancel`) ends the running command's connection and opens a new one, so
 * the session goes on; losing the connection otherwise ends the session.
 */
export class ShellSession {
  failures = 0;
  private localDir: string;
  /** The remote working folder ('' is the top), kept on this side: the server has no such notion. */
  private remoteDir = '';
  private running = false;
  private cancelled = false;
  /** The command being run, for the "cmd: name: reason" lines of commands over many names. */
  private command = '';

  constructor(
    private client: FerryClient,
    private readonly io: ShellIO,
    localDir = process.cwd(),
    /** Opens a fresh connection after a cancelled command; without it a cancel ends the session. */
    private readonly reconnect?: () => Promise<FerryClient>,
  ) {
    this.localDir = localDir;
  }

  get localFolder(): string {
    return this.localDir;
  }

  get remoteFolder(): string {
    return this.remoteDir;
  }

  /** The current connection (a cancel replaces it). */
  get connection(): FerryClient {
    return this.client;
  }

  /** True while a command runs (Ctrl-C then cancels it instead of clearing the line). */
  get busy(): boolean {
    return this.running;
  }

  /** Cancels the running command: its connection is closed; `run` reports it and reconnects. */
  cancel(): void {
    if (!this.running || this.cancelled) return;
    this.cancelled = true;
    this.client.destroy();
  }

  /** Runs one command line. */
  async run(line: string): Promise<ShellOutcome> {
    const split = splitWords(line);
    if (!split.ok) return this.fail('shell', split.reason);
    const [command, ...args] = split.words;
    if (command === undefined || command.startsWith('#')) return 'continue';
    this.running = true;
    this.command = command;
    try {
      if ((await this.dispatch(command, args)) === 'quit') return 'quit';
    } catch (error) {
      if (this.cancelled) return this.afterCancel(command);
      if (isFerryError(error) && error.fatal) {
        this.fail(command, `${userMessage(error, 'shell')} (connection lost: ending the session)`);
        return 'quit';
      }
      return this.fail(command, errorText(error));
    } finally {
      this.running = false;
    }
    // A cancel that raced with the command's own end still replaced the connection.
    if (this.cancelled) return this.afterCancel(command);
    return 'continue';
  }

  private async afterCancel(command: string): Promise<ShellOutcome> {
    this.cancelled = false;
    this.fail(command, `cancelled${command === 'put' || command === 'get' ? ' (run it again to resume)' : ''}`);
    if (this.reconnect === undefined) return 'quit';
    try {
      this.client = await this.reconnect();
      return 'continue';
    } catch (error) {
      this.fail('shell', `${userMessage(error, 'shell')} (cannot reconnect: ending the session)`);
      return 'quit';
    }
  }

  private async dispatch(command: string, args: string[]): Promise<ShellOutcome> {
    switch (command) {
      case 'ls':
        await this.ls(args);
        break;
      case 'cd':
        await this.cd(args);
        break;
      case 'pwd':
        expectArgs(parseFlags(args, {}, 'pwd').rest, 0, 0, 'pwd');
        this.io.out(`/${this.remoteDir}\n`);
        break;
      case 'stat':
        await this.stat(args);
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
      case 'mkdir':
      case 'mv':
      case 'rename':
        throw new CommandError('not available: ferry servers have no such operation (put creates folders; to rename, get and put again)');
      case 'help':
      case '?':
        this.io.out(HELP);
        break;
      case 'quit':
      case 'exit':
      case 'bye':
        return 'quit';
      default:
        throw new CommandError(`unknown command (commands: ${SHELL_COMMANDS.join(', ')})`);
    }
    return 'continue';
  }

  /** readline completer: commands, then remote or local names depending on the command. */
  complete(line: string): Promise<[string[], string]> {
    return complete(line, {
      remote: async (dir) => {
        // Names typed relative to the remote folder complete relative to it.
        const base = this.remoteDir;
        const listed = await this.client.list(joinRemote(base, dir), { recursive: false });
        return listed.map((e): Candidate => ({ name: base === '' ? e.name : e.name.slice(base.length + 1), folder: e.kind === 'folder' }));
      },
      local: async (dir) =>
        (await fs.readdir(path.resolve(this.localDir, dir), { withFileTypes: true })).map(
          (d): Candidate => ({ name: d.name, folder: d.isDirectory() }),
        ),
    });
  }

  private fail(command: string, message: string): ShellOutcome {
    this.failures++;
    this.io.err(`${printableName(command)}: ${message}\n`);
    return 'continue';
  }

  private local(file: string): string {
    return path.resolve(this.localDir, file === '~' ? os.homedir() : file.startsWith('~/') ? path.join(os.homedir(), file.slice(2)) : file);
  }

  /** A remote name typed by the user, resolved against the remote folder ("/x" is from the top). */
  private remote(name: string): string {
    return joinRemote(this.remoteDir, name);
  }

  private async ls(args: string[]): Promise<void> {
    const { flags, rest } = parseFlags(args, { l: 'long', long: 'long' }, 'ls [-l] [FOLDER]');
    expectArgs(rest, 0, 1, 'ls [-l] [FOLDER]');
    const folder = rest[0] === undefined ? this.remoteDir : this.remote(rest[0]);
    let entries = await this.client.list(folder).catch((error: unknown) => {
      if (folder !== '' && isFerryError(error) && (error.code === 'CONFLICT' || error.code === 'NOT_FOUND')) return [];
      throw error;
    });
    if (entries.length === 0 && folder !== '') {
      const file = await this.client.stat(folder).catch(() => undefined);
      if (file === undefined) throw new FerryError('NOT_FOUND', `no folder named "${printableName(folder)}"`);
      entries = file.kind === 'file' ? [file] : [];
    }
    if (entries.length === 0) this.io.out(folder === '' ? '(no files stored yet)\n' : `(${printableName(folder)} is empty)\n`);
    else this.io.out(tableListing(entries, flags.has('long')));
  }

  private async cd(args: string[]): Promise<void> {
    expectArgs(args, 0, 1, 'cd [FOLDER]');
    const folder = args[0] === undefined ? '' : this.remote(args[0]);
    if (folder !== '') {
      const found = await this.client.stat(folder).catch(() => undefined);
      const listed = found === undefined ? await this.client.list(folder, { recursive: false }).catch(() => [] as Entry[]) : [];
      if (found?.kind === 'file') throw new CommandError(`"${printableName(folder)}" is a file, not a folder`);
      if (found === undefined && listed.length === 0) throw new CommandError(`no folder named "${printableName(folder)}"`);
    }
    this.remoteDir = folder;
  }

  private async stat(args: string[]): Promise<void> {
    expectArgs(args, 1, 1, 'stat NAME');
    this.io.out(statText(await this.client.stat(this.remote(args[0]!))));
  }

  private async put(args: string[]): Promise<void> {
    const usage = 'put [-r] [-f] LOCAL [REMOTE]';
    const { flags, rest } = parseFlags(args, { r: 'recursive', recursive: 'recursive', f: 'overwrite', overwrite: 'overwrite' }, usage);
    expectArgs(rest, 1, 2, usage);
    const source = this.local(rest[0]!);
    const overwrite = flags.has('overwrite');
    let name = rest[1] === undefined ? this.remote(path.basename(source)) : this.remote(rest[1]);
    if (rest[1]?.endsWith('/')) name = joinRemote(name, path.basename(source)); // "put a.txt docs/" → docs/a.txt
    const stats = await fs.stat(source).catch(() => undefined);
    if (stats === undefined) throw new CommandError(`no such local file: ${source}`);
    if (!stats.isDirectory()) return this.putFile(source, name, stats.size, overwrite);
    if (!flags.has('recursive')) throw new CommandError(`${source} is a folder: use put -r`);
    const tree = await walkLocalTree(source, (warning) => this.io.err(`put: warning: ${warning}\n`));
    await this.each(tree, (file) => file.path, (file) => this.putFile(file.path, `${name}/${file.relative}`, file.size, overwrite));
  }

  private async putFile(source: string, name: string, size: number, overwrite: boolean): Promise<void> {
    const same = await storedCopy(this.client, name, source, size);
    if (same !== undefined) return this.report('put', { skipped: true, entry: same }, 0, source);
    await this.transfer('put', name, source, async (onProgress) => ({
      skipped: false,
      result: await this.client.put(source, name, { overwrite, onProgress }),
    }));
  }

  private async get(args: string[]): Promise<void> {
    const usage = 'get [-r] REMOTE [LOCAL]';
    const { flags, rest } = parseFlags(args, { r: 'recursive', recursive: 'recursive' }, usage);
    expectArgs(rest, 1, 2, usage);
    const name = this.remote(rest[0]!);
    const base = path.posix.basename(name) || 'ferry';
    if (flags.has('recursive')) {
      const destination = this.local(rest[1] ?? base);
      const entries = await this.client.list(name, { recursive: true });
      if (entries.length === 0) throw new CommandError(`no folder named "${printableName(name)}"`);
      await prepareFolder(destination);
      await this.each(entries, (entry) => entry.name, async (entry) => {
        const local = localPathFor(destination, name, entry.name);
        if (local === undefined) throw new CommandError(`the server sent "${printableName(entry.name)}", outside "${printableName(name)}": not written`);
        await fs.mkdir(path.dirname(local), { recursive: true });
        await this.getFile(entry.name, local, entry);
      });
      return;
    }
    let target = this.local(rest[1] ?? base);
    if ((await fs.stat(target).catch(() => undefined))?.isDirectory()) target = path.join(target, base);
    await this.getFile(name, target);
  }

  private async getFile(name: string, target: string, remote?: Entry): Promise<void> {
    await this.transfer('get', name, target, (onProgress) => download(this.client, name, target, { remote }, { onProgress }));
  }

  private async rm(args: string[]): Promise<void> {
    const usage = 'rm [-r] NAME...';
    const { flags, rest } = parseFlags(args, { r: 'recursive', recursive: 'recursive' }, usage);
    expectArgs(rest, 1, Infinity, usage);
    await this.each(rest, (typed) => typed, async (typed) => {
      const name = this.remote(typed);
      await (flags.has('recursive') ? this.client.removeTree(name) : this.client.remove(name));
      this.io.out(`removed ${printableName(name)}\n`);
    });
  }

  /**
   * Runs `work` for every item; a failure is printed and the rest still run (a lost or
   * cancelled connection stops them). Several failures end with "N of M failed".
   */
  private async each<T>(items: T[], name: (item: T) => string, work: (item: T) => Promise<void>): Promise<void> {
    if (items.length === 1) return work(items[0]!);
    let failed = 0;
    for (const item of items) {
      try {
        await work(item);
      } catch (error) {
        if (this.cancelled || (isFerryError(error) && error.fatal)) throw error;
        failed++;
        this.io.err(`${printableName(this.command)}: ${printableName(name(item))}: ${errorText(error)}\n`);
      }
    }
    if (failed > 0) throw new CommandError(`${failed} of ${items.length} failed`);
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

  private async transfer(verb: 'put' | 'get', name: string, local: string, run: (onProgress: (p: Progress) => void) => Promise<Outcome>): Promise<void> {
    const bar = await this.io.progress(`${verb} ${printableName(name)}`);
    const started = performance.now();
    let outcome: Outcome;
    try {
      outcome = await run((p) => bar.update(p));
    } finally {
      bar.stop();
    }
    this.report(verb, outcome, performance.now() - started, local);
  }

  private report(verb: 'put' | 'get', outcome: Outcome, ms: number, local: string): void {
    const shown = path.relative(this.localDir, local) || local;
    if (outcome.skipped) {
      const { entry } = outcome;
      const what = verb === 'put' ? `${printableName(entry.name)} is already stored` : `${shown} already holds ${printableName(entry.name)}`;
      this.io.out(`skipped ${what}, identical  ${humanSize(entry.size)}  ${entry.algorithm} ${entry.digest}\n`);
      return;
    }
    const { result } = outcome;
    const what = verb === 'put' ? `stored ${printableName(result.name)}` : `saved ${shown} from ${printableName(result.name)}`;
    this.io.out(`${what}  ${humanSize(result.size)}  ${result.algorithm} ${result.digest}  ${duration(ms)} (${rate(result.size - result.resumedFrom, ms)})\n`);
  }
}

/** Joins a remote folder and a typed name; "/x" starts from the top; "." and ".." are resolved. */
export function joinRemote(folder: string, typed: string): string {
  const parts = typed.startsWith('/') ? [] : folder.split('/').filter((p) => p !== '');
  for (const part of typed.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) throw new CommandError(`"${printableName(typed)}" goes above the top folder`);
      parts.pop();
    } else {
      parts.push(part);
    }
  }
  return parts.join('/');
}

/**
 * Splits the flags off a command's words: `known` maps each accepted flag (without dashes;
 * single letters may be grouped, -rf) to what it means. "--" ends the flags.
 */
function parseFlags(args: string[], known: Record<string, string>, usage: string): { flags: Set<string>; rest: string[] } {
  const flags = new Set<string>();
  const rest: string[] = [];
  let ended = false;
  for (const arg of args) {
    if (ended || !arg.startsWith('-') || arg === '-') {
      rest.push(arg);
    } else if (arg === '--') {
      ended = true;
    } else {
      const names = arg.startsWith('--') ? [arg.slice(2)] : [...arg.slice(1)];
      for (const flag of names) {
        const meaning = known[flag];
        if (meaning === undefined) throw new CommandError(`unknown option ${arg.startsWith('--') ? arg : `-${flag}`} (usage: ${usage})`);
        flags.add(meaning);
      }
    }
  }
  return { flags, rest };
}

function expectArgs(args: string[], min: number, max: number, usage: string): void {
  if (args.length < min || args.length > max) throw new CommandError(`usage: ${usage}`);
}

function errorText(error: unknown): string {
  if (error instanceof CommandError) return error.message;
  if (isFerryError(error)) return userMessage(error, 'shell');
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const file = (error as NodeJS.ErrnoException | undefined)?.path;
  if (code === 'ENOENT') return `no such local file or folder: ${file ?? '?'}`;
  if (code === 'EACCES' || code === 'EPERM') return `permission denied: ${file ?? '?'}`;
  if (code === 'ENOTDIR') return `not a folder: ${file ?? '?'}`;
  if (code === 'EISDIR') return `${file ?? 'that'} is a folder`;
  return userMessage(error, 'shell');
}
