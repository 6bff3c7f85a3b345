import { createHash, type Hash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { FerryError } from '../errors.js';
import type { DigestAlgorithm } from '../io/digest.js';

/**
 * Digests on the HTTP side (RFC 9530): the stored digest goes out as `Repr-Digest` and as the
 * strong ETag, and a client's `Content-Digest`/`Repr-Digest` on an upload is checked before
 * anything is published. The store keeps sha256 today; these helpers are the one place the
 * HTTP door reads a stored digest, so a change of algorithm is a change here.
 */

export interface HasDigest {
  digest: Buffer;
}

/** The stored digest of a file, as RFC 9530 names it. */
export function storedDigest(entry: HasDigest): { algorithm: 'sha-256'; bytes: Buffer } {
  return { algorithm: 'sha-256', bytes: entry.digest };
}

/** `sha-256=:<base64>:` */
export function reprDigest(entry: HasDigest): string {
  const { algorithm, bytes } = storedDigest(entry);
  return `${algorithm}=:${bytes.toString('base64')}:`;
}

/** A strong entity tag: the stored digest, so it changes exactly when the bytes do. */
export function etagOf(entry: HasDigest): string {
  const { bytes } = storedDigest(entry);
  return `"${bytes.toString('base64url')}"`;
}

/** `algorithm:<hex>` for listings, as `ferry ls`/`stat` print it. */
export function digestText(entry: HasDigest, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${entry.digest.toString('hex')}`;
}


/** Algorithms the door verifies on upload; others a client names are ignored, as RFC 9530 allows. */
const VERIFIED: Record<string, { node: string; length: number }> = {
  'sha-256': { node: 'sha256', length: 32 },
  'sha-512': { node: 'sha512', length: 64 },
};

export interface ExpectedDigests {
  /** sha-256, checked by the store itself at commit. */
  sha256?: Buffer;
  /** sha-512, hashed beside the upload by `DigestCheck`. */
  sha512?: Buffer;
}

/**
 * The digests an upload request promises, from `Content-Digest` and `Repr-Digest` (for an
 * upload without content coding the two are the same bytes). A malformed field is a client
 * error (400); two different values for one algorithm can match no body (INTEGRITY).
 */
export function expectedDigests(req: IncomingMessage): ExpectedDigests {
  const expected: ExpectedDigests = {};
  for (const header of ['content-digest', 'repr-digest']) {
    const value = req.headers[header];
    if (typeof value !== 'string') continue;
    for (const member of value.split(',')) {
      const match = /^\s*([a-z0-9_.*-]+)\s*=\s*:([A-Za-z0-9+/]*={0,2}):\s*(?:;.*)?$/.exec(member);
      if (!match) throw new FerryError('PROTOCOL', `malformed ${header} header: expected sha-256=:<base64>:`);
      const algorithm = VERIFIED[match[1]!];
      if (!algorithm) continue;
      const bytes = Buffer.from(match[2]!, 'base64');
      if (bytes.length !== algorithm.length) throw new FerryError('PROTOCOL', `malformed ${header} header: a ${match[1]} digest is ${algorithm.length} bytes`);
      const key = algorithm.node as 'sha256' | 'sha512';
      const before = expected[key];
      if (before && !before.equals(bytes)) throw new FerryError('INTEGRITY', `${header} names two different ${match[1]} digests`);
      expected[key] = bytes;
    }
  }
  return expected;
}

/** Hashes an upload's bytes for a digest the store does not compute itself (sha-512). */
export class DigestCheck {
  private readonly hash: Hash | undefined;

  constructor(private readonly expected: ExpectedDigests) {
    this.hash = expected.sha512 ? createHash('sha512') : undefined;
  }

  update(chunk: Buffer): void {
    this.hash?.update(chunk);
  }

  /** Throws INTEGRITY unless the extra digests match (call before the store commits). */
  verify(): void {
    if (this.hash && this.expected.sha512 && !this.hash.digest().equals(this.expected.sha512)) {
      throw new FerryError('INTEGRITY', 'sha-512 mismatch: the bytes received are not the bytes sent; nothing was stored');
    }
  }
}
