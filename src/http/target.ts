import { FerryError } from '../errors.js';
import { nameProblem, RESERVED_COMPONENT } from '../protocol/names.js';

/** Where ferry's own HTTP routes live: under the reserved name, which no stored file can have. */
export const INTERNAL_PREFIX = `/${RESERVED_COMPONENT}/`;

/** A request target turned into a stored name. */
export interface Target {
  /** The stored name ('' for the root), checked by the protocol's rules. */
  name: string;
  /** The path ended with '/': a folder is meant. */
  folder: boolean;
  query: URLSearchParams;
}

/**
 * Decodes a request path into a stored name, exactly once, and checks it with the protocol's
 * name rules (PROTOCOL.md §6), so no encoding reaches outside the root: `..` and `.` are
 * refused after decoding, an encoded separator (`%2F`, `%5C`) is refused rather than read as
 * one, invalid or overlong UTF-8 is refused, and a `%25` stays a literal `%` (a double-encoded
 * `%252e%252e` is the ordinary name `%2e%2e`). NUL, controls, backslashes and `.ferry` fail the
 * name rules.
 */
export function parseTarget(url: string): Target {
  if (!url.startsWith('/')) throw new FerryError('BAD_NAME', 'bad request target: it must be a path starting with /');
  const mark = url.indexOf('?');
  const rawPath = mark < 0 ? url : url.slice(0, mark);
  const query = new URLSearchParams(mark < 0 ? '' : url.slice(mark + 1));
  if (/%(2f|5c)/i.test(rawPath)) throw new FerryError('BAD_NAME', 'bad name: an encoded / or \\ is not a separator and cannot be part of a name');
  return { ...decodeName(rawPath), query };
}

/** The stored name a decoded-once path names (also for a MOVE's Destination). */
export function decodeName(rawPath: string): { name: string; folder: boolean } {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    throw new FerryError('BAD_NAME', 'bad name: the path is not valid percent-encoded UTF-8');
  }
  const folder = decoded.endsWith('/');
  const name = decoded.replace(/^\//, '').replace(/\/$/, '');
  if (name !== '') {
    const problem = nameProblem(name);
    if (problem !== undefined) throw new FerryError('BAD_NAME', `bad name: ${problem}`);
  }
  return { name, folder };
}

/** The path of a stored name in a URL: each component percent-encoded. */
export function pathOf(name: string, folder = false): string {
  const encoded = name === '' ? '' : name.split('/').map(encodeURIComponent).join('/');
  return `/${encoded}${folder && encoded !== '' ? '/' : ''}`;
}

/** A query flag such as `?overwrite=1` (also `?overwrite`, `=true`). */
export function flag(query: URLSearchParams, key: string): boolean {
  const value = query.get(key);
  return value !== null && value !== '0' && value !== 'false';
}
