import { UsageError } from './exit.js';

/** Parses a duration option given in seconds ("10", "0.5") into milliseconds; must be > 0. */
export function parseSeconds(text: string, option: string): number {
  const seconds = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(seconds) || seconds <= 0 || seconds > 86_400 * 365) {
    throw new UsageError(`invalid ${option} "${text}": use a number of seconds greater than 0`);
  }
  return Math.round(seconds * 1000);
}
