/**
 * A modification time in whole milliseconds, as the seconds fs.utimes takes, set so that it
 * lands exactly on the millisecond. Seconds are a double (steps of ~0.24 µs at today's
 * times): 1700000000.123 is …122999906 ns, and libuv keeps whole microseconds (truncating), so
 * the file would read back one millisecond early (…20.122999). Half a microsecond more lands,
 * after libuv's truncation, on …20.123000 exactly.
 */
export function mtimeSeconds(mtimeMs: number): number {
  return (Math.floor(mtimeMs) + 0.0005) / 1000;
}
