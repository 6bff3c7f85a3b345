/** Pure formatting helpers for CLI output. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function humanSize(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${UNITS[unit]}`;
}

export function rate(bytes: number, ms: number): string {
  if (ms <= 0) return '-';
  return `${humanSize(Math.round((bytes * 1000) / ms))}/s`;
}

export function duration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

const pad = (n: number): string => String(n).padStart(2, '0');

/** "2026-11-21 23:28" in local time (ls). */
export function shortTime(date: Date): string {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** "2026-11-21 23:28:05" in local time (ls -l, stat): the same clock as ls, to the second. */
export function longTime(date: Date): string {
  return `${shortTime(date)}:${pad(date.getSeconds())}`;
}
