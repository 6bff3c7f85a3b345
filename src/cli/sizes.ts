import { UsageError } from './exit.js';

const MULTIPLIERS: Record<string, number> = { '': 1, b: 1, k: 1024, kib: 1024, m: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gib: 1024 ** 3, t: 1024 ** 4, tib: 1024 ** 4 };

/** "1048576", "512K", "10MiB", "2G" → bytes (binary units). */
export function parseSize(text: string, option: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const multiplier = match ? MULTIPLIERS[match[2]!.toLowerCase()] : undefined;
  if (!match || multiplier === undefined) throw new UsageError(`invalid size for ${option}: "${text}" (e.g. 1048576, 512K, 10M, 2G)`);
  return Math.floor(Number(match[1]) * multiplier);
}
