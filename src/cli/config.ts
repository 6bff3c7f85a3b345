import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command, Option } from 'commander';
import { parse, TomlError } from 'smol-toml';
import { UsageError } from './exit.js';
import { checkOptionValue } from './numbers.js';

/**
 * `ferry serve --config FILE`: a TOML file whose top-level keys are the command's own flags
 * without `--` (`port = 4455`, `max-file-size = "10G"`, `tls = true`; `fsync = false` for
 * `--no-fsync`). The keys come from the command's option definitions, so a flag added later
 * gets its key with no code here. Flags given on the command line win over the file; the file
 * wins over the built-in defaults. Paths (`<file>`, `<dir>` options) are relative to the
 * file's folder. The file holds no secrets: `tokens` is the path of the tokens file.
 */

/** Options that say how to read a configuration, not what it is: never keys of the file. */
const NOT_KEYS = new Set(['config', 'check', 'help', 'version']);

type Kind = 'boolean' | 'value' | 'list';

interface ConfigKey {
  key: string;
  /** commander's attribute name, e.g. maxFileSize. */
  attribute: string;
  kind: Kind;
  /** A file or folder: relative values are taken from the config file's folder. */
  isPath: boolean;
}

/** The keys a config file may set for `command`: one per flag, `--no-x` as `x`. */
export function configKeys(command: Command): Map<string, ConfigKey> {
  const keys = new Map<string, ConfigKey>();
  for (const option of command.options as readonly Option[]) {
    if (option.long === undefined) continue;
    const name = option.long.replace(/^--/, '');
    const key = option.negate ? name.replace(/^no-/, '') : name;
    if (NOT_KEYS.has(key)) continue;
    const kind: Kind = option.variadic ? 'list' : option.required || option.optional ? 'value' : 'boolean';
    keys.set(key, { key, attribute: option.attributeName(), kind, isPath: /<(file|dir|path)>/.test(option.flags) });
  }
  return keys;
}

/** A problem in the file: where, and what. */
function at(file: string, line: number | undefined, message: string): string {
  return line === undefined ? `${file}: ${message}` : `${file} line ${line}: ${message}`;
}

/**
 * Reads `--config` (if given) into `command`'s option values, under the flags the user typed.
 * Returns one line per problem (unknown key, wrong type, bad value, unreadable or malformed
 * file); the values that were fine are applied either way, so `--check` can go on checking.
 */
export function applyConfigFile(command: Command): string[] {
  const file = command.getOptionValue('config') as string | undefined;
  if (file === undefined) return [];
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    return [`cannot read config file ${file}: ${reason}`];
  }
  let table: Record<string, unknown>;
  try {
    table = parse(source) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof TomlError) return [at(file, error.line, `not valid TOML: ${error.message.split('\n')[0]}`)];
    throw error;
  }
  const lines = keyLines(source);
  const keys = configKeys(command);
  const problems: string[] = [];
  for (const [key, raw] of Object.entries(table)) {
    const line = lines.get(key);
    const known = keys.get(key);
    if (known === undefined) {
      const isTable = typeof raw === 'object' && raw !== null && !Array.isArray(raw) && !(raw instanceof Date);
      const hint = isTable ? ': the file has no tables or dotted keys, only top-level keys' : suggestion(key, [...keys.keys()]);
      problems.push(at(file, line, `unknown key "${key}"${hint}`));
      continue;
    }
    const converted = convert(known, raw);
    if ('expected' in converted) {
      problems.push(at(file, line, `${key}: expected ${converted.expected}, got ${describe(raw)}`));
      continue;
    }
    const { value } = converted;
    // A flag given on the command line (or by the environment) wins over the file.
    const source = command.getOptionValueSource(known.attribute);
    if (source === 'cli' || source === 'env') continue;
    const resolved = known.isPath && typeof value === 'string' ? path.resolve(path.dirname(file), value) : value;
    if (typeof resolved === 'string') {
      try {
        checkOptionValue(known.attribute, resolved, key);
      } catch (error) {
        if (!(error instanceof UsageError)) throw error;
        problems.push(at(file, line, error.message));
        continue;
      }
    }
    command.setOptionValueWithSource(known.attribute, resolved, 'config');
  }
  return problems;
}

/** The option value for a TOML value (as commander would hold it), or the type it should have. */
function convert(key: ConfigKey, raw: unknown): { value: string | boolean | string[] } | { expected: string } {
  switch (key.kind) {
    case 'boolean':
      return typeof raw === 'boolean' ? { value: raw } : { expected: 'true or false' };
    case 'value':
      if (typeof raw === 'string') return { value: raw };
      if (typeof raw === 'number' && Number.isFinite(raw)) return { value: String(raw) };
      return { expected: 'a string or a number' };
    case 'list':
      if (Array.isArray(raw) && raw.every((item) => typeof item === 'string' || typeof item === 'number')) return { value: raw.map(String) };
      return { expected: 'a list of strings' };
  }
}

function describe(raw: unknown): string {
  if (typeof raw === 'string') return JSON.stringify(raw);
  if (Array.isArray(raw)) return 'a list';
  if (raw instanceof Date) return 'a date';
  if (typeof raw === 'object' && raw !== null) return 'a table';
  return String(raw);
}

/** ` (did you mean "port"?)` for a near miss, else a pointer to the list of keys. */
function suggestion(key: string, known: string[]): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = editDistance(key, candidate);
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  if (best !== undefined && bestDistance <= Math.max(2, Math.floor(key.length / 3))) return ` (did you mean "${best}"?)`;
  return ': keys are the flags of ferry serve --help without "--"';
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * The line each top-level key is defined on (its first segment for dotted keys, the header
 * for `[tables]`), skipping the insides of multi-line strings. The TOML parser keeps no
 * positions, and the file was parsed already, so this only has to find valid definitions.
 */
export function keyLines(source: string): Map<string, number> {
  const lines = new Map<string, number>();
  let insideString: string | undefined;
  source.split(/\r?\n/).forEach((text, index) => {
    let rest = text;
    if (insideString !== undefined) {
      const end = rest.indexOf(insideString);
      if (end < 0) return;
      rest = rest.slice(end + 3);
      insideString = undefined;
    } else {
      const match = /^\s*(?:\[+\s*)?("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)/.exec(rest);
      if (match && /^\s*(\[|[^=]*=)/.test(rest)) {
        const token = match[1]!;
        const key = token.startsWith('"') ? (JSON.parse(token) as string) : token.startsWith("'") ? token.slice(1, -1) : token;
        if (!lines.has(key)) lines.set(key, index + 1);
      }
    }
    // A multi-line string opened (and not closed) on this line continues on the next ones.
    for (;;) {
      const open = /"""|'''/.exec(rest);
      if (!open) break;
      const close = rest.indexOf(open[0], open.index + 3);
      if (close < 0) {
        insideString = open[0];
        break;
      }
      rest = rest.slice(close + 3);
    }
  });
  return lines;
}
