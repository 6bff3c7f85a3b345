/**
 * A modification time in whole milliseconds, as the seconds fs.utimes takes: 10 µs into the
 * millisecond, not its start. Seconds are a double (steps of ~0.24 µs at today's times), and
 * e.g. 1700000000.123 is stored as …122999906 ns, which reads back one millisecond early
 * (ferry truncates times to milliseconds); 10 µs later survives that rounding, and stays below
 * the half millisecond where Node's Stats.mtime (a Date, rounded) would show the next one.
 */
export function mtimeSeconds(mtimeMs: number): number {
  return (Math.floor(mtimeMs) + 0.01) / 1000;
}
