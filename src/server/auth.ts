import { createHash, timingSafeEqual } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { FerryError } from '../errors.js';
import type { MessageTypeName } from '../protocol/index.js';

/**
 * Bearer tokens for `ferry serve --tokens FILE` (PROTOCOL.md §8).
 *
 * The file holds one token per line: `<token> <read|write>`; blank lines and lines starting
 * with `#` are ignored. Only SHA-256 digests of the tokens are kept in memory, and a check
 * hashes the candidate and compares it with every digest in constant time, so neither the
 * comparison nor the position of a match leaks through timing. Tokens never appear in logs
 * or error messages (a parse error names the line number, never its text).
 */

export type Permission = 'read' | 'write';

/** Shorter tokens are refused: they could be guessed (suggest `openssl rand -hex 32`). */
export const MIN_TOKEN_LENGTH = 16;
/** A token must fit an AUTH frame's `str` comfortably. */
export const MAX_TOKEN_LENGTH = 1024;
/** Failed AUTH attempts after which a connection is closed. */
export const MAX_FAILED_ATTEMPTS = 3;

interface TokenRecord {
  digest: Buffer;
  permission: Permission;
}

export class TokenSet {
  private constructor(private readonly records: TokenRecord[]) {}

  /** Reads and parses a tokens file; errors are FerryError('LOCAL_IO') with the line number. */
  static async load(file: string): Promise<TokenSet> {
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new FerryError('LOCAL_IO', `cannot read the tokens file ${file}${code ? ` (${code})` : ''}`, { cause: error });
    }
    return TokenSet.parse(text, file);
  }

  static parse(text: string, source = 'tokens file'): TokenSet {
    const records: TokenRecord[] = [];
    const lines = text.split(/\r?\n/);
    lines.forEach((raw, index) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const where = `${source} line ${index + 1}`;
      const fields = line.split(/\s+/);
      if (fields.length !== 2) throw new FerryError('LOCAL_IO', `${where}: expected "<token> <read|write>"`);
      const [token, permission] = fields as [string, string];
      if (permission !== 'read' && permission !== 'write') {
        throw new FerryError('LOCAL_IO', `${where}: the permission must be "read" or "write"`);
      }
      if (token.length < MIN_TOKEN_LENGTH) {
        throw new FerryError('LOCAL_IO', `${where}: the token is shorter than ${MIN_TOKEN_LENGTH} characters (make one with: openssl rand -hex 32)`);
      }
      if (token.length > MAX_TOKEN_LENGTH) throw new FerryError('LOCAL_IO', `${where}: the token is longer than ${MAX_TOKEN_LENGTH} characters`);
      const digest = digestOf(token);
      if (records.some((r) => r.digest.equals(digest))) throw new FerryError('LOCAL_IO', `${where}: the same token appears twice`);
      records.push({ digest, permission });
    });
    if (records.length === 0) throw new FerryError('LOCAL_IO', `${source} holds no token: add lines "<token> <read|write>"`);
    return new TokenSet(records);
  }

  get size(): number {
    return this.records.length;
  }

  /** The token's permission, or undefined. Constant time in the token and in where it matches. */
  check(token: string): Permission | undefined {
    const digest = digestOf(token);
    let found: Permission | undefined;
    for (const record of this.records) {
      // Every record is compared; no early exit.
      if (timingSafeEqual(record.digest, digest)) found = record.permission;
    }
    return found;
  }
}

function digestOf(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** What a request needs. Unknown (future) request types need write: fail closed. */
export function permissionFor(type: MessageTypeName): Permission | undefined {
  switch (type) {
    case 'HELLO':
    case 'AUTH':
    case 'PUT_END': // belongs to a PUT that was already checked
      return undefined;
    case 'LIST':
    case 'STAT':
    case 'GET':
    case 'HASH_PREFIX': // (v2) digest of a stored file's first bytes: a read
    case 'GET_BATCH': // (v6) many GETs in one request
      return 'read';
    default:
      return 'write';
  }
}

export function allows(granted: Permission | undefined, needed: Permission): boolean {
  return granted === 'write' || (granted === 'read' && needed === 'read');
}

export interface ThrottleOptions {
  /** Failures from one address (within `windowMs`) before its AUTH answers are delayed. */
  freeFailures?: number;
  /** Delay after the first failure past `freeFailures`; doubles with each further one. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Failures older than this are forgotten. */
  windowMs?: number;
  /** Addresses remembered at most (oldest forgotten first), so a flood cannot grow memory. */
  maxAddresses?: number;
}

/**
 * Failed AUTH attempts per client address. Once an address has failed `freeFailures` times,
 * every further AUTH verdict for it (success or failure, so timing tells nothing) waits
 * `baseDelayMs × 2^(n − freeFailures)`, capped; failures fade after `windowMs`.
 */
export class AuthThrottle {
  private readonly failures = new Map<string, number[]>();
  private readonly freeFailures: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly windowMs: number;
  private readonly maxAddresses: number;

  constructor(options: ThrottleOptions = {}) {
    this.freeFailures = options.freeFailures ?? MAX_FAILED_ATTEMPTS;
    this.baseDelayMs = options.baseDelayMs ?? 1000;
    this.maxDelayMs = options.maxDelayMs ?? 10_000;
    this.windowMs = options.windowMs ?? 10 * 60_000;
    this.maxAddresses = options.maxAddresses ?? 10_000;
  }

  private recent(address: string, now: number): number[] {
    const times = (this.failures.get(address) ?? []).filter((t) => now - t < this.windowMs);
    if (times.length === 0) this.failures.delete(address);
    else this.failures.set(address, times);
    return times;
  }

  /** How long to hold the verdict of an AUTH from `address`. */
  delayFor(address: string, now = Date.now()): number {
    const excess = this.recent(address, now).length - this.freeFailures;
    if (excess < 0) return 0;
    return Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(excess, 20));
  }

  recordFailure(address: string, now = Date.now()): void {
    const times = this.recent(address, now);
    this.failures.delete(address); // re-insert: Map order is the eviction order
    this.failures.set(address, [...times, now].slice(-64));
    if (this.failures.size > this.maxAddresses) {
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
  }
}
