/**
 * The integer exchange's wire format, as pure functions (no sockets). One UTF-8 line each way,
 * ending with "\n" ("\r\n" accepted):
 *
 *   client → server   Client of <client name>: <integer>
 *   server → client   Server of <server name>: <server's integer>
 *   server → client   ERROR <reason>                (instead, when the client's line is malformed)
 *
 * Integers are arbitrary-precision (bigint), so any integer a client writes is read exactly;
 * the valid range is 1–100, and a client integer outside it asks the server to stop.
 * Untrusted text is echoed through `printable` (control characters escaped), so it stays
 * on one harmless line.
 */

import { printableName as printable } from '../protocol/names.js';

export { printable };

export const DEFAULT_EXCHANGE_PORT = 12000;
export const DEFAULT_SERVER_NAME = 'ferry';
export const DEFAULT_SERVER_NUMBER = 42n;
/** Longest line accepted either way, not counting the line ending. */
export const MAX_LINE_BYTES = 1024;
/** Longest name we send, so a line always fits within MAX_LINE_BYTES. */
export const MAX_NAME_BYTES = 256;
export const MIN_NUMBER = 1n;
export const MAX_NUMBER = 100n;
export const PROMPT = 'Enter an integer between 1 and 100:';

const CLIENT_PREFIX = 'Client of ';
const SERVER_PREFIX = 'Server of ';
const ERROR_PREFIX = 'ERROR ';

/** One side's introduction: its name and its integer. */
export interface Greeting {
  name: string;
  value: bigint;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

/** A whole decimal integer, optionally negative ("007" is 7); undefined for anything else. */
export function parseInteger(text: string): bigint | undefined {
  const trimmed = text.trim();
  return /^[-+]?\d+$/.test(trimmed) ? BigInt(trimmed) : undefined;
}

export function inRange(value: bigint): boolean {
  return value >= MIN_NUMBER && value <= MAX_NUMBER;
}

// C0/C1 controls and bidi overrides: a name must not break the line or drive a terminal.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/u;

/** Why `name` cannot be used as an exchange name, or undefined if it can. */
export function nameProblem(name: string): string | undefined {
  if (name.trim() === '') return 'the name is empty';
  if (CONTROL.test(name)) return 'the name contains a control character';
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) return `the name is longer than ${MAX_NAME_BYTES} bytes`;
  return undefined;
}

export function formatClientLine(greeting: Greeting): string {
  return `${CLIENT_PREFIX}${greeting.name}: ${greeting.value}\n`;
}

export function formatServerLine(greeting: Greeting): string {
  return `${SERVER_PREFIX}${greeting.name}: ${greeting.value}\n`;
}

/** "ERROR <reason>\n", with the reason kept to one printable line. */
export function formatErrorLine(reason: string): string {
  return `${ERROR_PREFIX}${printable(reason)}\n`;
}

/** Parses a client's line (without its line ending). */
export function parseClientLine(line: string): Parsed<Greeting> {
  return parseGreeting(line, CLIENT_PREFIX);
}

export type ServerReply = { kind: 'answer'; greeting: Greeting } | { kind: 'error'; reason: string };

/** Parses the server's answer: its greeting, or the ERROR it sent back. */
export function parseServerLine(line: string): Parsed<ServerReply> {
  if (line.startsWith(ERROR_PREFIX)) return { ok: true, value: { kind: 'error', reason: printable(line.slice(ERROR_PREFIX.length)) } };
  const parsed = parseGreeting(line, SERVER_PREFIX);
  return parsed.ok ? { ok: true, value: { kind: 'answer', greeting: parsed.value } } : parsed;
}

function parseGreeting(line: string, prefix: string): Parsed<Greeting> {
  const expected = `expected "${prefix}<name>: <integer>"`;
  if (!line.startsWith(prefix)) return { ok: false, reason: expected };
  const rest = line.slice(prefix.length);
  // The integer follows the last ": ", so a name may itself contain ": ".
  const separator = rest.lastIndexOf(': ');
  if (separator === -1) return { ok: false, reason: expected };
  const name = rest.slice(0, separator);
  const numberText = rest.slice(separator + 2);
  const problem = nameProblem(name);
  if (problem !== undefined) return { ok: false, reason: problem };
  const value = parseInteger(numberText);
  if (value === undefined) return { ok: false, reason: `"${printable(shorten(numberText))}" is not an integer` };
  return { ok: true, value: { name, value } };
}

function shorten(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}
