import type { Hash } from 'node:crypto';
import { createRequire } from 'node:module';
import { nodeCrypto } from '../builtins.js';

/**
 * The digest algorithms ferry verifies transfers with (PROTOCOL.md §11). Both give 32 bytes.
 * SHA-256 is always there (node:crypto); BLAKE3 comes from a native binding with prebuilt
 * binaries, loaded on first use: where it cannot load, only SHA-256 is offered.
 */
export type DigestAlgorithm = 'sha256' | 'blake3';
export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = ['sha256', 'blake3'];

/** A running digest. `peek` gives the digest of what was fed so far and keeps going. */
export interface Hasher {
  readonly algorithm: DigestAlgorithm;
  update(data: Uint8Array): void;
  peek(): Buffer;
}

/** The digest of zero bytes, per algorithm (a resume's prefix when nothing is kept). */
export const EMPTY_DIGEST: Readonly<Record<DigestAlgorithm, Buffer>> = {
  sha256: Buffer.from('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'hex'),
  blake3: Buffer.from('af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262', 'hex'),
};

interface Blake3Native {
  update(input: Uint8Array): unknown;
  digestBuffer(): Buffer;
}
type Blake3Constructor = new () => Blake3Native;
interface Blake3Binding {
  Blake3Hasher: Blake3Constructor;
  /** One-shot digest: no native hasher object left for the GC to free. */
  blake3?: (input: Buffer) => Buffer;
}

let blake3: { ctor?: Blake3Constructor; oneShot?: (input: Buffer) => Buffer; error?: string } | undefined;

/**
 * The binding's prebuilt package for this platform, tried first: the package's own loader
 * detects musl with `process.report.getReport()`, which cost ~15 ms of every CLI start here.
 * On Linux the glibc build is tried before the musl one (the wrong one fails to load).
 */
function platformPackages(): string[] {
  const { platform, arch } = process;
  if (platform === 'linux' && (arch === 'x64' || arch === 'arm64')) return [`linux-${arch}-gnu`, `linux-${arch}-musl`];
  if (platform === 'linux' && arch === 'arm') return ['linux-arm-gnueabihf'];
  if (platform === 'darwin' && (arch === 'x64' || arch === 'arm64')) return [`darwin-${arch}`];
  if (platform === 'win32' && (arch === 'x64' || arch === 'arm64' || arch === 'ia32')) return [`win32-${arch}-msvc`];
  if (platform === 'freebsd' && arch === 'x64') return ['freebsd-x64'];
  return [];
}

function requireBinding(): Blake3Binding {
  const require = createRequire(import.meta.url);
  for (const suffix of platformPackages()) {
    try {
      return require(`@napi-rs/blake-hash-${suffix}`) as Blake3Binding;
    } catch {
      // not installed for this platform, or the other libc: the package's own loader decides
    }
  }
  return require('@napi-rs/blake-hash') as Blake3Binding;
}

function loadBlake3(): { ctor?: Blake3Constructor; oneShot?: (input: Buffer) => Buffer; error?: string } {
  if (blake3 === undefined) {
    try {
      const binding = requireBinding();
      const probe = new binding.Blake3Hasher();
      probe.update(Buffer.alloc(0));
      if (!probe.digestBuffer().equals(EMPTY_DIGEST.blake3)) throw new Error('the binding computed a wrong BLAKE3 digest');
      const oneShot = binding.blake3;
      blake3 = { ctor: binding.Blake3Hasher, oneShot: oneShot?.(Buffer.alloc(0)).equals(EMPTY_DIGEST.blake3) ? oneShot : undefined };
    } catch (error) {
      blake3 = { error: error instanceof Error ? error.message.split('\n')[0] : String(error) };
    }
  }
  return blake3;
}

/** Whether BLAKE3 can be used in this process (loads the binding once). */
export function blake3Available(): boolean {
  return loadBlake3().ctor !== undefined;
}

/** Why BLAKE3 could not load (undefined when it did): for the one warning a CLI prints. */
export function blake3LoadProblem(): string | undefined {
  return loadBlake3().error;
}

/** The algorithm a peer prefers: BLAKE3 when it loads (15× cheaper than SHA-256 without SHA-NI). */
export function preferredAlgorithm(): DigestAlgorithm {
  return blake3Available() ? 'blake3' : 'sha256';
}

class Sha256Hasher implements Hasher {
  readonly algorithm = 'sha256';
  constructor(private readonly hash: Hash = nodeCrypto().createHash('sha256')) {}
  update(data: Uint8Array): void {
    this.hash.update(data);
  }
  peek(): Buffer {
    return this.hash.copy().digest();
  }
}

class Blake3Hasher implements Hasher {
  readonly algorithm = 'blake3';
  constructor(private readonly native: Blake3Native) {}
  update(data: Uint8Array): void {
    this.native.update(data);
  }
  peek(): Buffer {
    // BLAKE3 finalisation does not consume the state: more input may follow.
    return this.native.digestBuffer();
  }
}

export function createHasher(algorithm: DigestAlgorithm): Hasher {
  if (algorithm === 'sha256') return new Sha256Hasher();
  const { ctor, error } = loadBlake3();
  if (ctor === undefined) throw new Error(`BLAKE3 is not available in this process: ${error}`);
  return new Blake3Hasher(new ctor());
}

/**
 * Digest of one buffer. BLAKE3 goes through the binding's one-shot function: each native hasher
 * holds ~3 KB outside the JS heap until a GC finalizes it, which at thousands of small files a
 * second grew a process by tens of MB (issue 12).
 */
export function digestOf(algorithm: DigestAlgorithm, data: Uint8Array): Buffer {
  const oneShot = algorithm === 'blake3' ? loadBlake3().oneShot : undefined;
  if (oneShot) return oneShot(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  const hasher = createHasher(algorithm);
  hasher.update(data);
  return hasher.peek();
}

export function isDigestAlgorithm(value: string): value is DigestAlgorithm {
  return (DIGEST_ALGORITHMS as readonly string[]).includes(value);
}
