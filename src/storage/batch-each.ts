import type { StoreBackend, StoreUpload } from './backend.js';
import type { BatchFile, BatchOptions, BatchOutcome } from './batch.js';
import type { DigestAlgorithm } from '../io/digest.js';
import type { StoredEntry, UploadOptions } from './types.js';

/** How one file of a batch is looked up and begun; a backend may answer from what it learned for the whole batch. */
export interface EachFileSteps {
  /** The stored file of that name (for skipIdentical), or undefined when there is none (or it cannot be read). */
  stored(name: string, algorithm: DigestAlgorithm): Promise<StoredEntry | undefined>;
  begin(name: string, options: UploadOptions): Promise<StoreUpload>;
}

/** Files of one batch in flight at once on a backend without a batched write path. */
const EACH_WINDOW = 8;
/**
 * Files in flight at once per store, over all batches: each is a few requests with their
 * SDK objects, so many batches committing at once (several per connection, many connections)
 * would otherwise hold hundreds of uploads (measured: 16 batches of 64 at once, 180 MB peak RSS).
 */
const STORE_WINDOW = 16;

/** A count of files in flight per store, and who waits for a turn. */
const turns = new WeakMap<object, { running: number; waiting: (() => void)[] }>();

async function takeTurn(store: object): Promise<() => void> {
  let state = turns.get(store);
  if (state === undefined) turns.set(store, (state = { running: 0, waiting: [] }));
  const s = state;
  if (s.running >= STORE_WINDOW) await new Promise<void>((resolve) => s.waiting.push(resolve));
  else s.running++;
  return () => {
    const next = s.waiting.shift();
    if (next) next(); // the turn passes on: running stays the same
    else s.running--;
  };
}

/**
 * `storeBatch` for a backend that has no batched write path (S3): every file goes through its
 * own upload (verified, no-clobber or overwrite, atomic) with a few in flight at once. The
 * outcomes are the local backend's: one per file, in order, each committed or refused alone.
 */
export async function storeEachFile(store: Pick<StoreBackend, 'stat' | 'beginUpload'>, files: BatchFile[], options: BatchOptions, steps: EachFileSteps = plainSteps(store)): Promise<BatchOutcome[]> {
  const algorithm = options.algorithm ?? 'sha256';
  const outcomes: BatchOutcome[] = new Array<BatchOutcome>(files.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < files.length) {
      const index = next++;
      const done = await takeTurn(store);
      try {
        outcomes[index] = await storeOne(steps, files[index]!, options, algorithm);
      } finally {
        done();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(EACH_WINDOW, files.length) }, lane));
  return outcomes;
}

function plainSteps(store: Pick<StoreBackend, 'stat' | 'beginUpload'>): EachFileSteps {
  return {
    stored: (name, algorithm) => store.stat(name, algorithm).catch(() => undefined),
    begin: (name, options) => store.beginUpload(name, options),
  };
}

async function storeOne(steps: EachFileSteps, file: BatchFile, options: BatchOptions, algorithm: DigestAlgorithm): Promise<BatchOutcome> {
  try {
    if (options.skipIdentical) {
      const stored = await steps.stored(file.name, algorithm).catch(() => undefined);
      if (stored?.kind === 'file' && stored.size === file.data.length && stored.digest.equals(file.digest)) return { status: 'identical', entry: stored };
    }
    const upload = await steps.begin(file.name, {
      overwrite: options.overwrite,
      rename: options.rename,
      size: file.data.length,
      mtimeMs: file.mtimeMs,
      algorithm,
    });
    try {
      upload.write(file.data);
      return { status: 'stored', entry: await upload.commit({ size: file.data.length, digest: file.digest }) };
    } catch (error) {
      await upload.abort().catch(() => undefined);
      throw error;
    }
  } catch (error) {
    return { status: 'refused', error };
  }
}
