/**
 * Splitting a shell command line into words, the way a user expects from sh/sftp: blanks
 * separate words, '…' is literal, "…" allows \" and \\, and a backslash outside quotes
 * escapes the next character. So `put "my file.txt"` and `put my\ file.txt` both work.
 */

export interface ScannedWord {
  /** The word with quotes and escapes resolved. */
  text: string;
  /** Offset in the line where the word's raw text starts. */
  start: number;
}

export interface Scan {
  words: ScannedWord[];
  /** The quote still open at the end of the line, if any. */
  openQuote: '"' | "'" | undefined;
  /** True when the line ends inside a word (no blank after the last word). */
  endsInWord: boolean;
}

/** Scans the whole line, tolerating an unfinished quote or escape (for completion). */
export function scanWords(line: string): Scan {
  const words: ScannedWord[] = [];
  let current: ScannedWord | undefined;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote === undefined && /\s/.test(c)) {
      if (current) words.push(current);
      current = undefined;
      continue;
    }
    current ??= { text: '', start: i };
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else current.text += c;
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) current.text += line[++i];
      else current.text += c;
    } else if (c === "'" || c === '"') {
      quote = c;
    } else if (c === '\\') {
      if (i + 1 < line.length) current.text += line[++i];
    } else {
      current.text += c;
    }
  }
  if (current) words.push(current);
  return { words, openQuote: quote, endsInWord: current !== undefined };
}

/** The words of a complete command line, or why it cannot be split. */
export function splitWords(line: string): { ok: true; words: string[] } | { ok: false; reason: string } {
  const scan = scanWords(line);
  if (scan.openQuote) return { ok: false, reason: `unterminated ${scan.openQuote} quote` };
  return { ok: true, words: scan.words.map((w) => w.text) };
}

/** Escapes text for insertion after what the user typed, matching the quote they are in. */
export function escapeForLine(text: string, openQuote: '"' | "'" | undefined): string {
  if (openQuote === "'") return text; // nothing can be escaped inside '…'
  if (openQuote === '"') return text.replace(/["\\]/g, (c) => `\\${c}`);
  return text.replace(/[\s"'\\]/g, (c) => `\\${c}`);
}
