/**
 * Stored names are hostile input on both sides: the server checks every name a client
 * sends, and the client checks every name a server sends before writing anything locally.
 * One function decides for both (PROTOCOL.md "Names").
 */
export const MAX_NAME_BYTES = 4096;
export const MAX_COMPONENT_BYTES = 255;
/**
 * Most path components (folders + the file) in a name. Real trees (source checkouts,
 * node_modules, Maven layouts, photo archives) stay well under 40 levels; without a limit a
 * 4096-byte name can hold 2048 components, so one request could make the server create,
 * open and later remove ~2000 nested folders. 64 keeps every request to a bounded, small
 * number of folder operations and keeps names portable to other file systems and tools.
 */
export const MAX_NAME_DEPTH = 64;
/** First component reserved for the server's internal state. */
export const RESERVED_COMPONENT = '.ferry';

// C0 and C1 controls, DEL, and the bidirectional overrides that make names lie on screen.
// eslint-disable-next-line no-control-regex
const FORBIDDEN_CHARS = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\\]/u;

/** Returns why `name` is not an acceptable stored name, or undefined if it is. */
export function nameProblem(name: string): string | undefined {
  if (isPlainName(name)) return undefined;
  if (name.length === 0) return 'name is empty';
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) return `name is longer than ${MAX_NAME_BYTES} bytes`;
  if (!isWellFormed(name)) return 'name is not valid Unicode';
  if (name.normalize('NFC') !== name) return 'name is not in Unicode NFC form';
  if (FORBIDDEN_CHARS.test(name)) {
    return name.includes('\\') ? 'name contains a backslash' : 'name contains a control character';
  }
  if (name.startsWith('/')) return 'name is an absolute path';
  const components = name.split('/');
  if (components.length > MAX_NAME_DEPTH) return `name has more than ${MAX_NAME_DEPTH} path components`;
  for (const component of components) {
    if (component === '') return 'name has an empty path component';
    if (component === '.' || component === '..') return `name has a "${component}" component`;
    if (Buffer.byteLength(component, 'utf8') > MAX_COMPONENT_BYTES) {
      return `a name component is longer than ${MAX_COMPONENT_BYTES} bytes`;
    }
  }
  // Case-insensitively: the root may be on a file system where ".FERRY" is ".ferry".
  if (components[0]!.toLowerCase() === RESERVED_COMPONENT) return `"${RESERVED_COMPONENT}" is reserved for the server`;
  return undefined;
}

/**
 * The common case in one pass over the characters, with no allocation (every file of a listing
 * or batch is checked on both sides): printable ASCII but the backslash, within the limits,
 * without empty, "." or ".." components or the reserved first one. False only means "not
 * sure": nameProblem then looks at the name in full, and words what is wrong.
 */
function isPlainName(name: string): boolean {
  const length = name.length;
  if (length === 0 || length > MAX_NAME_BYTES) return false; // ASCII: a byte per character
  let start = 0;
  let components = 1;
  for (let i = 0; i <= length; i++) {
    const c = i < length ? name.charCodeAt(i) : 0x2f;
    if (c === 0x2f) {
      const size = i - start;
      if (size === 0 || size > MAX_COMPONENT_BYTES) return false;
      // "." and "..", and a first component that may be ".ferry" in any case: the full check decides.
      if (name.charCodeAt(start) === 0x2e && (size <= 2 || (start === 0 && size === RESERVED_COMPONENT.length))) return false;
      if (i < length && ++components > MAX_NAME_DEPTH) return false;
      start = i + 1;
    } else if (c < 0x20 || c > 0x7e || c === 0x5c) {
      return false;
    }
  }
  return true;
}

export function isValidName(name: string): boolean {
  return nameProblem(name) === undefined;
}

/** A listing prefix: empty for the whole store, otherwise a valid name (a trailing / is dropped). */
export function normalizePrefix(prefix: string): string {
  return prefix.replace(/\/+$/, '');
}

function isWellFormed(text: string): boolean {
  // Lone surrogates cannot be encoded as UTF-8; String.prototype.isWellFormed needs Node 20+.
  return text.isWellFormed();
}

/**
 * Renders a name for a terminal: anything that could move the cursor or change colours is
 * shown as a \\u escape, so a hostile name can never drive the user's terminal.
 */
export function printableName(name: string): string {
  // eslint-disable-next-line no-control-regex
  return name.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/gu, (c) =>
    `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
