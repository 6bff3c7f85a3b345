import v8 from 'node:v8';

/** New space (both semi-spaces together) at which it stops growing. */
export const NEW_SPACE_CAP = 8 * 1024 * 1024;

/**
 * Stops V8's young generation from growing past `cap` in ferry's own long-running commands
 * (serve, put, get). Why: V8 grows the new space to 32 MiB (two 16 MiB semi-spaces) in any
 * process that keeps allocating, and that was most of ferry's peak RSS above 100 MB (the
 * server on a 10,000-file tree 128 → ~100 MB, its client 98 → 87 MB, no CPU lost). Node
 * takes --max-semi-space-size only at start, which an npm bin cannot pass portably (`env -S`
 * is not everywhere). V8 reads --semi-space-growth-factor at each growth and clamps it to 2
 * only while configuring the heap, so setting it to 1 once the cap is reached holds the new
 * space there; a V8 that ignores it just grows as before. Only the CLI calls this: a library
 * must not change the flags of the process that embeds it.
 */
export function capYoungGeneration(cap = NEW_SPACE_CAP): void {
  if (stopGrowthAt(cap)) return;
  // Looked at after garbage collections only (the new space grows at one): an idle process is never woken.
  const observer = new PerformanceObserver(() => {
    if (stopGrowthAt(cap)) observer.disconnect();
  });
  observer.observe({ entryTypes: ['gc'] });
}

/** Stops the new space's growth once it has reached `cap`; whether it has. */
function stopGrowthAt(cap: number): boolean {
  if (newSpaceSize() < cap) return false;
  v8.setFlagsFromString('--semi-space-growth-factor=1');
  return true;
}

function newSpaceSize(): number {
  return v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')?.space_size ?? 0;
}
