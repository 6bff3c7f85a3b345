import { parseSeconds } from './numbers.js';
import type { ClientOptions } from './session.js';

/**
 * The command lines the launcher may run without commander (`ferry ls`, `ferry stat`): only
 * the plain forms of the flags these commands define in main.ts, each at most once. Anything
 * else — help, an unknown or repeated flag, a bad value, an odd form — returns undefined and
 * goes to the full CLI, so its wording and exit code for mistakes stay commander's.
 */

export type QuickCommand =
  | { name: 'ls'; prefix: string | undefined; options: ClientOptions & { json?: boolean; long?: boolean } }
  | { name: 'stat'; file: string; options: ClientOptions & { json?: boolean } };

/** Flag → the option attribute commander gives it, and whether it takes a value. */
type Flags = Readonly<Record<string, { key: string; value: boolean }>>;

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

const COMMAND_FLAGS: Readonly<Record<'ls' | 'stat', Flags>> = {
  ls: { ...CLIENT_FLAGS, '--json': { key: 'json', value: false }, '-l': { key: 'long', value: false }, '--long': { key: 'long', value: false } },
  stat: { ...CLIENT_FLAGS, '--json': { key: 'json', value: false } },
};

/** commander's defaults for the client commands' options. */
const DEFAULTS = { timeout: '30', digest: 'auto' } as const;

export function parseQuickCommand(args: readonly string[]): QuickCommand | undefined {
  const name = args[0];
  if (name !== 'ls' && name !== 'stat') return undefined;
  const flags = COMMAND_FLAGS[name];
  const options: Record<string, string | boolean> = { ...DEFAULTS };
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
      options[flag.key] = true;
      continue;
    }
    const value = equals === -1 ? args[++i] : arg.slice(equals + 1);
    if (value === undefined || value === '' || value.startsWith('-')) return undefined;
    options[flag.key] = value;
  }
  if (options.digest !== 'auto' && options.digest !== 'sha256') return undefined;
  if (!validSeconds(options.timeout as string)) return undefined;
  if (name === 'ls') return positional.length <= 1 ? { name, prefix: positional[0], options } : undefined;
  return positional.length === 1 ? { name, file: positional[0]!, options } : undefined;
}

function validSeconds(text: string): boolean {
  try {
    parseSeconds(text, '--timeout');
    return true;
  } catch {
    return false;
  }
}
