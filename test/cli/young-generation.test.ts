import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
/** The copy the bin loads (dist/bin/cli/young-generation.js, from scripts/young-generation.cjs). */
const MODULE = fileURLToPath(new URL('../../bin/cli/young-generation.js', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/cli/main.js', import.meta.url));
/** The old generation's growth between full collections the bin sets, in percent (scripts/young-generation.cjs). */
const OLD_GENERATION_GROWING_PERCENT = 50;

/**
 * A child process (flags must not leak into the test runner) that keeps allocating objects
 * which survive a while, as a server on a busy tree does; prints its largest new space and the cap.
 */
async function largestNewSpace(capped: boolean): Promise<{ largest: number; cap: number }> {
  const script = `
    const v8 = require('node:v8');
    const { capYoungGeneration, NEW_SPACE_CAP } = require(${JSON.stringify(MODULE)});
    ${capped ? 'capYoungGeneration();' : ''}
    let kept = [];
    let largest = 0;
    (async () => {
      for (let round = 0; round < 400; round++) {
        for (let i = 0; i < 2000; i++) kept.push({ round, i, text: 'x' + i });
        if (kept.length > 40000) kept = [];
        await new Promise((resolve) => setTimeout(resolve, 1));
        const space = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
        largest = Math.max(largest, space.space_size);
      }
      console.log(JSON.stringify({ largest, cap: NEW_SPACE_CAP }));
    })();
  `;
  const { stdout } = await run(process.execPath, ['-e', script], { timeout: 60_000 });
  return JSON.parse(stdout) as { largest: number; cap: number };
}

describe('the bin\'s young-generation cap and old-generation growth (serve, put, get)', () => {
  it('holds the new space at its cap where V8 would grow it to 32 MiB', async () => {
    const [free, capped] = await Promise.all([largestNewSpace(false), largestNewSpace(true)]);
    assert.ok(free.largest > 2 * free.cap, `without the cap the workload grows the new space (${free.largest} bytes): the test can tell`);
    // Growth doubles; a look after each collection may come one doubling late at most.
    assert.ok(capped.largest <= 2 * capped.cap, `new space ${capped.largest} bytes with a cap of ${capped.cap}`);
  });

  it('is applied by the bin to serve, put and get, and not to other commands', async () => {
    // A preload reports each PerformanceObserver that watches garbage collections (the young
    // generation's cap) and each V8 flag set (the old generation's growth).
    const dir = await mkdtemp(path.join(tmpdir(), 'ferry-young-'));
    try {
      const preload = path.join(dir, 'watch.cjs');
      await writeFile(
        preload,
        [
          "const observe = PerformanceObserver.prototype.observe; PerformanceObserver.prototype.observe = function (options) { if (options?.entryTypes?.includes('gc')) process.stderr.write('gc-watched\\n'); return observe.call(this, options); };",
          "const v8 = require('node:v8'); const setFlags = v8.setFlagsFromString; v8.setFlagsFromString = (flags) => { process.stderr.write(`v8-flags ${flags}\\n`); return setFlags(flags); };",
        ].join('\n'),
      );
      const applied = async (command: string): Promise<{ watched: boolean; growth: boolean }> => {
        const { stderr } = await run(process.execPath, ['--require', preload, BIN, command, '--help'], { timeout: 30_000 });
        return { watched: stderr.includes('gc-watched'), growth: stderr.includes(`v8-flags --heap-growing-percent=${OLD_GENERATION_GROWING_PERCENT}`) };
      };
      for (const command of ['serve', 'put', 'get']) assert.deepEqual(await applied(command), { watched: true, growth: true }, `${command} is capped`);
      for (const command of ['rm', 'hash']) assert.deepEqual(await applied(command), { watched: false, growth: false }, `${command} is left alone`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
