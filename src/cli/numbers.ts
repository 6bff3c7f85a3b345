import type { Command } from 'commander';
import { UsageError } from './exit.js';

/**
 * Every numeric option of every command, checked before the command runs: a bad value is a
 * usage error (exit 2) naming the option and the range it takes, never a silent default.
 */

/** The longest delay Node's timers can wait (2^31 − 1 ms): every timeout must fit in it. */
export const MAX_TIMEOUT_SECONDS = 2_147_483;
/** --partial-ttl is compared with file times, not armed as a timer: a year is plenty. */
export const MAX_TTL_SECONDS = 365 * 86_400;
const MAX_COUNT = 1_000_000;
export const MAX_PARALLEL = 64;

const MULTIPLIERS: Record<string, number> = { '': 1, b: 1, k: 1024, kib: 1024, m: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gib: 1024 ** 3, t: 1024 ** 4, tib: 1024 ** 4 };

/** A duration in seconds ("10", "0.5") as milliseconds, within [min, max] seconds. */
export function parseSeconds(text: string, option: string, min = 0.001, max = MAX_TIMEOUT_SECONDS): number {
  const value = text.trim();
  const seconds = Number(value);
  if (value === '' || !/^\d+(\.\d+)?$/.test(value) || seconds < min || seconds > max) {
    throw new UsageError(`invalid ${option} "${text}": use a number of seconds from ${min} to ${max}`);
  }
  return Math.round(seconds * 1000);
}

/** A whole number within [min, max]. */
export function parseCount(text: string, option: string, min = 1, max = MAX_COUNT): number {
  const value = text.trim();
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`invalid ${option} "${text}": use a whole number from ${min} to ${max}`);
  }
  return Number(value);
}

/** A TCP port: 0–65535 (0 lets the system pick). */
export function parsePort(text: string, option = '--port'): number {
  return parseCount(text, option, 0, 65_535);
}

/** "1048576", "512K", "10MiB", "2G" → bytes (binary units), at least `min`. */
export function parseSize(text: string, option: string, min = 1): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const multiplier = match ? MULTIPLIERS[match[2]!.toLowerCase()] : undefined;
  const bytes = match && multiplier !== undefined ? Math.floor(Number(match[1]) * multiplier) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < min) {
    throw new UsageError(`invalid ${option} "${text}": use a size of at least ${min} byte${min === 1 ? '' : 's'}, e.g. 1048576, 512K, 10M, 2G (at most 8 PiB)`);
  }
  return bytes;
}

type Check = (text: string, flag: string) => unknown;

/** Option attribute name → its check. One table, so every command validates the same way. */
const CHECKS: Record<string, Check> = {
  timeout: (t, f) => parseSeconds(t, f),
  handshakeTimeout: (t, f) => parseSeconds(t, f),
  idleTimeout: (t, f) => parseSeconds(t, f),
  rawIdleTimeout: (t, f) => parseSeconds(t, f),
  grace: (t, f) => parseSeconds(t, f, 0),
  partialTtl: (t, f) => parseSeconds(t, f, 1, MAX_TTL_SECONDS),
  port: (t, f) => parsePort(t, f),
  rawPort: (t, f) => parsePort(t, f),
  metricsPort: (t, f) => parsePort(t, f),
  maxConnections: (t, f) => parseCount(t, f),
  maxPerIp: (t, f) => parseCount(t, f),
  parallel: (t, f) => parseCount(t, f, 1, MAX_PARALLEL),
  maxFileSize: (t, f) => parseSize(t, f),
  quota: (t, f) => parseSize(t, f),
  maxPartials: (t, f) => parseCount(t, f, 0),
  maxPartialBytes: (t, f) => parseSize(t, f, 0),
  maxOpenFiles: (t, f) => parseCount(t, f, 16),
};

/** Checks one option value by its attribute name (`port`, `maxFileSize`, …); `flag` names it in the error. */
export function checkOptionValue(attribute: string, text: string, flag: string): void {
  CHECKS[attribute]?.(text, flag);
}

/** Checks every numeric option `command` was given (commander's preAction hook). */
export function checkNumericOptions(command: Command): void {
  const values = command.opts<Record<string, unknown>>();
  for (const option of command.options) {
    const key = option.attributeName();
    const value = values[key];
    if (typeof value === 'string') checkOptionValue(key, value, option.long ?? option.flags);
  }
}
