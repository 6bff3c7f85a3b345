import { parseSeconds } from './numbers.js';
import type { ClientOptions } from './session.js';

/**
 * The command lines the launcher may run without commander (`ferry ls`, `ferry stat`, and
 * `ferry get`/`ferry put` of one file, over TCP or TLS): only the plain forms of the flags these
 * commands define in program.ts, each at most once. Anything else — help, an unknown or
 * repeated flag, a bad value, an odd form, -r, several files, stdin, --parallel, --raw —
 * returns undefined and goes to the full CLI, so its wording and exit code for mistakes stay
 * commander's.
 */

export interface QuickGetOptions extends ClientOptions {
  output?: string;
  quiet?: boolean;
  json?: boolean;
  /** false with --no-resume (commander's default for a negatable flag is true). */
  resume: boolean;
  preserve?: boolean;
}

export interface QuickPutOptions extends ClientOptions {
  as?: string;
  overwrite?: boolean;
  rename?: boolean;
  quiet?: boolean;
  json?: boolean;
  /** false with --no-resume. */
  resume: boolean;
  preserve?: boolean;
}

export type QuickCommand =
  | { name: 'ls'; prefix: string | undefined; options: ClientOptions & { json?: boolean; long?: boolean } }
  | { name: 'stat'; file: string; options: ClientOptions & { json?: boolean } }
  | { name: 'get'; file: string; options: QuickGetOptions }
  | { name: 'put'; file: string; options: QuickPutOptions };

/**
 * Flag → the option attribute commander gives it, and whether it takes a value (`sets`: the
 * value a flag without one gives, when not true).
 */
type Flags = Readonly<Record<string, { key: string; value: boolean; sets?: boolean }>>;

/** What main.ts's clientCommand defines for every client command. */
const CLIENT_FLAGS: Flags = {
  '-s': { key: 'server', value: true },
  '--server': { key: 'server', value: true },
  '--timeout': { key: 'timeout', value: true },
  '--tls': { key: 'tls', value: false },
  '--fingerprint': { key: 'fingerprint', value: true },
  '--token-file': { key: 'tokenFile', value: true },
  '--digest': { key: 'digest', value: true },
};

type QuickName = QuickCommand['name'];

/** The flags a single-file get and put share. */
const TRANSFER_FLAGS: Flags = {
  ...CLIENT_FLAGS,
  '-q': { key: 'quiet', value: false },
  '--quiet': { key: 'quiet', value: false },
  '--json': { key: 'json', value: false },
  '--no-resume': { key: 'resume', value: false, sets: false },
  '-p': { key: 'preserve', value: false },
  '--preserve': { key: 'preserve', value: false },
};

const COMMAND_FLAGS: Readonly<Record<QuickName, Flags>> = {
  ls: { ...CLIENT_FLAGS, '--json': { key: 'json', value: false }, '-l': { key: 'long', value: false }, '--long': { key: 'long', value: false } },
  stat: { ...CLIENT_FLAGS, '--json': { key: 'json', value: false } },
  get: { ...TRANSFER_FLAGS, '-o': { key: 'output', value: true }, '--output': { key: 'output', value: true } },
  put: {
    ...TRANSFER_FLAGS,
    '--as': { key: 'as', value: true },
    '--overwrite': { key: 'overwrite', value: false },
    '--rename': { key: 'rename', value: false },
  },
};

/** commander's defaults for the commands' options. */
const DEFAULTS: Readonly<Record<QuickName, Readonly<Record<string, string | boolean>>>> = {
  ls: { timeout: '30', digest: 'auto' },
  stat: { timeout: '30', digest: 'auto' },
  get: { timeout: '30', digest: 'auto', resume: true },
  put: { timeout: '30', digest: 'auto', resume: true },
};

/** Flags whose value may be "-" (get -o - writes to stdout). */
const DASH_VALUE = new Set(['output']);

export function parseQuickCommand(args: readonly string[]): QuickCommand | undefined {
  const name = args[0];
  if (name !== 'ls' && name !== 'stat' && name !== 'get' && name !== 'put') return undefined;
  const flags = COMMAND_FLAGS[name];
  const options: Record<string, string | boolean> = { ...DEFAULTS[name] };
  const given = new Set<string>();
  const positional: string[] = [];
  for (let i = 1; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('-')) {
      positional.push(arg);
      continue;
    }
    const equals = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = flags[equals === -1 ? arg : arg.slice(0, equals)];
    if (flag === undefined || given.has(flag.key)) return undefined;
    given.add(flag.key);
    if (!flag.value) {
      if (equals !== -1) return undefined;
      options[flag.key] = flag.sets ?? true;
      continue;
    }
    const value = equals === -1 ? args[++i] : arg.slice(equals + 1);
    if (value === undefined || value === '' || (value.startsWith('-') && !(value === '-' && DASH_VALUE.has(flag.key)))) return undefined;
    options[flag.key] = value;
  }
  if (options.digest !== 'auto' && options.digest !== 'sha256') return undefined;
  if (!validSeconds(options.timeout as string)) return undefined;
  if (name === 'ls') return positional.length <= 1 ? { name, prefix: positional[0], options } : undefined;
  if (positional.length !== 1) return undefined;
  if (name === 'get') return { name, file: positional[0]!, options: options as unknown as QuickGetOptions };
  // --overwrite with --rename is a usage error, worded by put itself in the full CLI.
  if (name === 'put') return options.overwrite && options.rename ? undefined : { name, file: positional[0]!, options: options as unknown as QuickPutOptions };
  return { name, file: positional[0]!, options };
}

function validSeconds(text: string): boolean {
  try {
    parseSeconds(text, '--timeout');
    return true;
  } catch {
    return false;
  }
}
