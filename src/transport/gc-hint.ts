import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Socket reads allocate a fresh 64 KiB buffer each; V8 frees their memory only when it
 * collects the small wrappers, which it does late because the wrappers are tiny. A transfer
 * of gigabytes would so hold ~50 MB of dead buffers. A young-generation collection every
 * few megabytes (≈1 ms each, ~30 per GiB) keeps peak memory flat.
 */
type Collect = (options?: { type: 'minor' | 'major'; execution: 'sync' }) => void;

let collect: Collect | undefined | null;

function collector(): Collect | null {
  if (collect === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      collect = runInNewContext('gc') as Collect;
    } catch {
      collect = null;
    }
  }
  return collect;
}

const EVERY = 4 * 1024 * 1024;
let sinceLast = 0;

/** Counts bytes received; now and then frees the buffers they came in. */
export function noteBytesReceived(count: number): void {
  sinceLast += count;
  if (sinceLast < EVERY) return;
  sinceLast = 0;
  collector()?.({ type: 'minor', execution: 'sync' });
}
