import { hashFile } from '../../io/hash-prefix.js';
import { createHasher, FerryError, preferredAlgorithm, type DigestAlgorithm } from '../../client/index.js';

export interface HashOptions {
  /** Checked by commander (choices): auto, blake3 or sha256. */
  digest?: 'auto' | 'blake3' | 'sha256';
}

/**
 * Prints each local file's digest as `algorithm:hex  file`, the form `ferry stat` shows, so a
 * copy can be checked by hand. The default algorithm is the one a ferry server agrees with
 * this client (BLAKE3 when the binding loads); `--digest sha256` matches sha256sum.
 */
export async function hash(files: string[], options: HashOptions): Promise<void> {
  const algorithm = chosenAlgorithm(options.digest);
  for (const file of files) {
    let digest: Buffer;
    try {
      digest = file === '-' ? await hashStdin(algorithm) : await hashFile(file, algorithm);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder' : code === 'EACCES' ? 'permission denied' : (error as Error).message;
      throw new FerryError('LOCAL_IO', `cannot read ${file}: ${why}`);
    }
    process.stdout.write(`${algorithm}:${digest.toString('hex')}  ${file}\n`);
  }
}

async function hashStdin(algorithm: DigestAlgorithm): Promise<Buffer> {
  const hasher = createHasher(algorithm);
  for await (const chunk of process.stdin) hasher.update(chunk as Buffer);
  return hasher.peek();
}

function chosenAlgorithm(digest: HashOptions['digest']): DigestAlgorithm {
  if (digest === undefined || digest === 'auto') return preferredAlgorithm();
  if (digest === 'blake3' && preferredAlgorithm() !== 'blake3') {
    throw new FerryError('LOCAL_IO', 'BLAKE3 is unavailable on this machine (its native binding did not load): use --digest sha256');
  }
  return digest;
}
