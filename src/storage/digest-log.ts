import { closeSync, constants, fstatSync, openSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { isDigestAlgorithm, type DigestAlgorithm } from '../io/digest.js';
import { isCode, type Folder } from './safe-path.js';

/**
 * A folder's digest log: one append-only file in `.ferry/meta/` per stored folder, a line per
 * recorded (or forgotten) file of that folder, the last line for a name winning.
 *
 *   <algorithm>:<hex> [<algorithm>:<hex> …] <size> <mtimeMs> <ino>\t<JSON string of the leaf>\n
 *   -\t<JSON string of the leaf>\n                                   (the file was removed)
 *
 * Why a log per folder and not a record file per stored file: a record file cost a create
 * (a journalled directory change) per upload, as many as the upload's own; an append to an
 * existing file costs none, and a listing reads one file per folder instead of one per entry.
 * A line is written before the file it describes is renamed into place, and names the inode,
 * size and mtime it was computed for, so a line for a file that never arrived, or that was
 * changed by hand since, does not match and the file is hashed again: a torn last line after
 * a crash costs that one file a rehash. Only the store's own process writes the logs.
 */
export interface DigestRecord {
  digests: Partial<Record<DigestAlgorithm, Buffer>>;
  size: number;
  mtimeMs: number;
  ino: number;
}

/** A log is rewritten with only its live lines once it is this large and mostly dead lines. */
const COMPACT_FROM_BYTES = 64 * 1024;
const READ_CHUNK = 64 * 1024;
const HEX_DIGEST = /^[0-9a-f]{64}$/;

export function recordText(record: DigestRecord): string {
  const digests = Object.entries(record.digests).map(([algorithm, digest]) => `${algorithm}:${digest.toString('hex')}`);
  return `${digests.join(' ')} ${record.size} ${record.mtimeMs} ${record.ino}`;
}

/** `[algorithm:hex …] size mtime ino`; a bare hex first is a sha256 (version 0.1's records). */
export function parseRecord(text: string): DigestRecord | undefined {
  const fields = text.trim().split(' ');
  if (fields.length < 4) return undefined;
  const [size, mtimeMs, ino] = fields.slice(-3).map(Number) as [number, number, number];
  if (!Number.isSafeInteger(size) || !Number.isFinite(mtimeMs) || !Number.isSafeInteger(ino)) return undefined;
  const digests: DigestRecord['digests'] = {};
  for (const field of fields.slice(0, -3)) {
    const colon = field.indexOf(':');
    const algorithm = colon < 0 ? 'sha256' : field.slice(0, colon);
    const hex = field.slice(colon + 1);
    if (!isDigestAlgorithm(algorithm) || !HEX_DIGEST.test(hex)) return undefined;
    digests[algorithm] = Buffer.from(hex, 'hex');
  }
  return { digests, size, mtimeMs, ino };
}

/** What a record must name to describe a file (from its stat). */
export interface RecordFacts {
  size: number;
  mtimeMs: number;
  ino: number;
}

/**
 * The `algorithm` digest that the record `text` (recordText's form) keeps for a file of these
 * facts, or undefined when it describes another file or keeps none in `algorithm`. What
 * `parseRecord` + `matches` decide, at a fraction of the cost on the read path of every listed
 * or served file: the numbers are compared first and only the one digest asked for is decoded.
 */
export function recordDigest(text: string, facts: RecordFacts, algorithm: DigestAlgorithm): Buffer | undefined {
  const inoAt = text.lastIndexOf(' ');
  const mtimeAt = inoAt > 0 ? text.lastIndexOf(' ', inoAt - 1) : -1;
  const sizeAt = mtimeAt > 0 ? text.lastIndexOf(' ', mtimeAt - 1) : -1;
  if (sizeAt <= 0) return undefined;
  if (!sameNumber(text, inoAt + 1, text.length, facts.ino) || !sameNumber(text, mtimeAt + 1, inoAt, facts.mtimeMs) || !sameNumber(text, sizeAt + 1, mtimeAt, facts.size)) {
    return undefined;
  }
  let hex: string | undefined;
  for (let start = 0; start < sizeAt; ) {
    let end = text.indexOf(' ', start);
    if (end < 0 || end > sizeAt) end = sizeAt;
    const colon = text.indexOf(':', start);
    const named = colon < 0 || colon > end ? 'sha256' : text.slice(start, colon);
    if (named === algorithm) hex = text.slice(colon < 0 || colon > end ? start : colon + 1, end);
    start = end + 1;
  }
  if (hex?.length !== 64) return undefined;
  // Decoding stops at the first pair that is not hex: 32 bytes only from 64 hex digits.
  const digest = Buffer.from(hex, 'hex');
  return digest.length === 32 ? digest : undefined;
}

/** Whether `text` from `start` to `end` is the safe integer `value` in decimal (recordText's numbers: a mtime may be negative). */
function sameNumber(text: string, start: number, end: number, value: number): boolean {
  const negative = text.charCodeAt(start) === 0x2d;
  if (negative) start++;
  if (end <= start || end - start > 16) return false;
  let n = 0;
  for (let i = start; i < end; i++) {
    const digit = text.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return false;
    n = n * 10 + digit;
  }
  return Number.isSafeInteger(n) && (negative ? -n : n) === value;
}

/** One line of a log: the record's text (undefined: the file was removed). */
export function logLine(leaf: string, record: DigestRecord | undefined): string {
  return lineOf(leaf, record === undefined ? undefined : recordText(record));
}

/** `logLine` from a record's text already made (undefined: the file was removed). */
export function lineOf(leaf: string, text: string | undefined): string {
  return `${text ?? '-'}\t${JSON.stringify(leaf)}\n`;
}

/** The live lines of a log, by leaf: the record's text, or undefined for a removed file. */
export interface LoadedLog {
  lines: Map<string, string | undefined>;
  /** Lines read (live or dead): with `lines.size`, tells how much of the log is dead. */
  count: number;
  bytes: number;
}

/**
 * Reads a whole log (a missing log is an empty one); unparsable lines (a torn last line) are
 * skipped. Without `withTexts`, only which leaves it names (every record undefined): enough to
 * tell how much of it is dead, without keeping the log's text alive through the records.
 */
export function loadLog(folder: Folder, file: string, withTexts = true): LoadedLog {
  const lines = new Map<string, string | undefined>();
  let count = 0;
  let bytes = 0;
  let fd: number;
  try {
    fd = openSync(folder.entry(file), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    if (isCode(error, 'ENOENT') || isCode(error, 'ELOOP') || isCode(error, 'EISDIR')) return { lines, count, bytes };
    throw error;
  }
  try {
    if (!fstatSync(fd).isFile()) return { lines, count, bytes };
    const chunk = Buffer.allocUnsafe(READ_CHUNK);
    let rest = '';
    for (;;) {
      const read = readSync(fd, chunk, 0, chunk.length, null);
      if (read === 0) break;
      bytes += read;
      // Lines are ASCII apart from the JSON leaf, which a chunk boundary may split: cut at the last newline in bytes.
      const end = chunk.lastIndexOf(0x0a, read - 1);
      if (end < 0) {
        rest += chunk.toString('latin1', 0, read);
        continue;
      }
      const text = Buffer.concat([Buffer.from(rest, 'latin1'), chunk.subarray(0, end + 1)]).toString('utf8');
      rest = chunk.toString('latin1', end + 1, read);
      for (const line of text.split('\n')) {
        if (line === '') continue;
        count++;
        const tab = line.indexOf('\t');
        if (tab < 0) continue;
        const leaf = parseLeaf(line, tab + 1);
        if (leaf === undefined) continue;
        const text = withTexts ? line.slice(0, tab) : '-';
        lines.set(leaf, text === '-' ? undefined : text);
      }
    }
  } finally {
    closeSync(fd);
  }
  return { lines, count, bytes };
}

/** The JSON string at `start` of `line`; without escapes (most names) no JSON.parse is needed. */
function parseLeaf(line: string, start: number): string | undefined {
  if (line.length < start + 2 || line.charCodeAt(start) !== 0x22 || line.charCodeAt(line.length - 1) !== 0x22) return undefined;
  const inner = line.slice(start + 1, -1);
  if (!inner.includes('\\') && !inner.includes('"')) return inner;
  try {
    const leaf: unknown = JSON.parse(line.slice(start));
    return typeof leaf === 'string' ? leaf : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Appends lines to a log, creating it if missing. A log whose last line was torn (a crash in
 * mid-write) gets a newline first, so the torn line cannot swallow the new one. Returns the
 * log's size after the append (0, writing nothing, if something other than a file is there).
 */
export function appendLog(folder: Folder, file: string, text: string): number {
  // O_NONBLOCK: a FIFO planted in its place must not hold the event loop (nothing is written to it).
  const fd = openSync(folder.entry(file), constants.O_RDWR | constants.O_CREAT | constants.O_APPEND | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o644);
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) return 0;
    const size = stats.size;
    if (size > 0) {
      const last = Buffer.alloc(1);
      readSync(fd, last, 0, 1, size - 1);
      if (last[0] !== 0x0a) text = `\n${text}`;
    }
    const bytes = Buffer.from(text, 'utf8');
    for (let written = 0; written < bytes.length; ) written += writeSync(fd, bytes, written);
    return size + bytes.length;
  } finally {
    closeSync(fd);
  }
}

/** Whether a log of `bytes` holding `count` lines for `live` names is worth rewriting. */
export function needsCompaction(log: LoadedLog): boolean {
  return log.bytes >= COMPACT_FROM_BYTES && log.count > 2 * log.lines.size;
}

/**
 * Rewrites a log with its live lines only (removed files dropped), by a temporary renamed
 * over it: a crash leaves the old log or the new one, both correct. Not synced, like the
 * appends: a lost log costs rehashing, never a wrong digest.
 */
export function compactLog(folder: Folder, file: string, log: LoadedLog): void {
  let text = '';
  for (const [leaf, record] of log.lines) if (record !== undefined) text += `${record}\t${JSON.stringify(leaf)}\n`;
  const temp = `${file}.compacting`;
  const fd = openSync(folder.entry(temp), constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o644);
  try {
    const bytes = Buffer.from(text, 'utf8');
    for (let written = 0; written < bytes.length; ) written += writeSync(fd, bytes, written);
  } catch (error) {
    closeSync(fd);
    unlinkSync(folder.entry(temp));
    throw error;
  }
  closeSync(fd);
  renameSync(folder.entry(temp), folder.entry(file));
  for (const [leaf, record] of log.lines) if (record === undefined) log.lines.delete(leaf);
  log.count = log.lines.size;
  log.bytes = Buffer.byteLength(text);
}

/** The size from which an appended log is looked at for compaction again. */
export function nextCompactionCheck(bytes: number): number {
  return Math.max(COMPACT_FROM_BYTES, 2 * bytes);
}
