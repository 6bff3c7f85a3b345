/**
 * A modification time in whole milliseconds, as the seconds fs.utimes takes. The middle of
 * the millisecond, not its start: seconds are a double, and e.g. 1700000000.123 is stored as
 * …122999906 ns, which reads back (truncated to milliseconds, as ferry reads times) one
 * millisecond early. Half a millisecond later survives any such rounding.
 */
export function mtimeSeconds(mtimeMs: number): number {
  return (Math.floor(mtimeMs) + 0.5) / 1000;
}
