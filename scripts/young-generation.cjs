'use strict';
// Copied by scripts/bundle-cli.mjs to dist/bin/cli/young-generation.js; the bin (main.js)
// calls it for ferry's own long-running commands (serve, put, get). It lives with the bin, not
// in src/: a library must not change the flags of the process that embeds it, and only the
// program that owns the process does.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a CommonJS file the CommonJS bin requires
const v8 = require('node:v8');

/** New space (both semi-spaces together) at which it stops growing. */
const NEW_SPACE_CAP = 8 * 1024 * 1024;
/**
 * How much the old generation may grow between full collections, in percent of what survived
 * the last one. Why: V8 lets it grow up to 4× (3× measured: ~12 MB live, collected at ~36 MB),
 * and objects that outlive two scavenges — a batch's files in flight — are promoted and wait
 * there, with the ArrayBuffers they hold, for the next full collection: on a 100,000-file tree
 * that was ~45 MB of the server's 120 MB peak RSS. 50% (1.5×) brought both the server and the
 * client from 105–130 MB to 87–94 MB; each full collection of ~12 MB costs ~10 ms. V8 reads the
 * flag each time it sets the next limit, so setting it after start works.
 */
const OLD_GENERATION_GROWING_PERCENT = 50;

/**
 * Stops V8's young generation from growing past `cap`. Why: V8 grows the new space to 32 MiB
 * (two 16 MiB semi-spaces) in any process that keeps allocating, and that was most of ferry's
 * peak RSS above 100 MB (the server on a 10,000-file tree 128 → ~100 MB, its client 98 → 87
 * MB, no CPU lost). Node takes --max-semi-space-size only at start, which an npm bin cannot
 * pass portably (`env -S` is not everywhere). V8 reads --semi-space-growth-factor at each
 * growth and clamps it to 2 only while configuring the heap, so setting it to 1 once the cap
 * is reached holds the new space there; a V8 that ignores it just grows as before. Looked at
 * after garbage collections only (the new space grows at one): an idle process is never woken.
 */
function capYoungGeneration(cap = NEW_SPACE_CAP) {
  // The bin calls this one function for serve, put and get: the old generation's growth is held here too.
  v8.setFlagsFromString(`--heap-growing-percent=${OLD_GENERATION_GROWING_PERCENT}`);
  if (stopGrowthAt(cap)) return;
  const observer = new PerformanceObserver(() => {
    if (stopGrowthAt(cap)) observer.disconnect();
  });
  observer.observe({ entryTypes: ['gc'] });
}

/** Stops the new space's growth once it has reached `cap`; whether it has. */
function stopGrowthAt(cap) {
  const newSpace = v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space');
  if ((newSpace?.space_size ?? 0) < cap) return false;
  v8.setFlagsFromString('--semi-space-growth-factor=1');
  return true;
}

module.exports = { capYoungGeneration, NEW_SPACE_CAP, OLD_GENERATION_GROWING_PERCENT };
