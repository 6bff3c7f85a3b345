import { escapeForLine, scanWords } from './shell-words.js';

/**
 * Tab completion for the interactive shell, in the shape node:readline wants:
 * `[replacements, typed]`, where every replacement starts with `typed` (the raw text of the
 * word under the cursor). The first word completes to a command; later words to remote or
 * local names depending on the command, one folder level at a time (folders end in "/").
 */

export const SHELL_COMMANDS = ['ls', 'cd', 'pwd', 'stat', 'put', 'get', 'rm', 'lls', 'lcd', 'help', 'quit', 'exit'] as const;

export interface Candidate {
  name: string;
  folder: boolean;
}

export interface CompletionSources {
  /** What is directly in remote folder `dir` ('' = the top), by full stored name. */
  remote(dir: string): Promise<Candidate[]>;
  /** What is in local folder `dir` (relative to the shell's local folder; '' = it), by bare name. */
  local(dir: string): Promise<Candidate[]>;
}

type ArgumentKind = 'remote' | 'local' | 'local-folder' | 'command' | 'none';

/** What the n-th argument (0-based, options not counted) of `command` names. */
export function argumentKind(command: string, index: number): ArgumentKind {
  switch (command) {
    case 'ls':
    case 'cd':
    case 'stat':
      return index === 0 ? 'remote' : 'none';
    case 'put':
      return index === 0 ? 'local' : index === 1 ? 'remote' : 'none';
    case 'get':
      return index === 0 ? 'remote' : index === 1 ? 'local' : 'none';
    case 'rm':
      return 'remote';
    case 'lls':
    case 'lcd':
      return index === 0 ? 'local-folder' : 'none';
    case 'help':
      return index === 0 ? 'command' : 'none';
    default:
      return 'none';
  }
}

export async function complete(line: string, sources: CompletionSources): Promise<[string[], string]> {
  const scan = scanWords(line);
  const typing = scan.endsInWord ? scan.words[scan.words.length - 1] : undefined;
  const typed = typing === undefined ? '' : line.slice(typing.start);
  const text = typing?.text ?? '';
  const before = scan.endsInWord ? scan.words.slice(0, -1) : scan.words;

  if (before.length === 0) {
    return [SHELL_COMMANDS.filter((c) => c.startsWith(text)).map((c) => `${c} `), typed];
  }
  const argumentIndex = before.slice(1).filter((w) => !w.text.startsWith('-')).length;
  const kind = argumentKind(before[0]!.text, argumentIndex);
  let candidates: Candidate[];
  try {
    candidates = await candidatesFor(kind, text, sources);
  } catch {
    return [[], typed]; // completion is a convenience: a failed lookup offers nothing
  }
  const replacements = candidates
    .filter((c) => c.name.startsWith(text))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((c) => {
      const rest = escapeForLine(c.name.slice(text.length), scan.openQuote);
      // A finished name inside a quote gets its closing quote; a folder stays open for more.
      return `${typed}${rest}${!c.folder && scan.openQuote ? scan.openQuote : ''}`;
    });
  return [replacements, typed];
}

async function candidatesFor(kind: ArgumentKind, text: string, sources: CompletionSources): Promise<Candidate[]> {
  const slash = text.lastIndexOf('/');
  const dir = slash === -1 ? '' : text.slice(0, slash + 1);
  switch (kind) {
    case 'command':
      return SHELL_COMMANDS.map((name) => ({ name, folder: false }));
    case 'remote': {
      const entries = await sources.remote(dir.replace(/\/+$/, ''));
      return entries.map((e) => ({ name: e.folder ? `${e.name}/` : e.name, folder: e.folder }));
    }
    case 'local':
    case 'local-folder': {
      const showHidden = text.slice(slash + 1).startsWith('.');
      const entries = await sources.local(dir);
      return entries
        .filter((e) => (kind === 'local' || e.folder) && (showHidden || !e.name.startsWith('.')))
        .map((e) => ({ name: `${dir}${e.name}${e.folder ? '/' : ''}`, folder: e.folder }));
    }
    default:
      return [];
  }
}
