import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { NEW_SPACE_CAP } from '../../src/cli/young-generation.js';

const run = promisify(execFile);
const MODULE = new URL('../../src/cli/young-generation.js', import.meta.url).href;

/**
 * A child process (flags must not leak into the test runner) that keeps allocating objects
 * which survive a while, as a server on a busy tree does, and prints its largest new space.
 */
async function largestNewSpace(capped: boolean): Promise<number> {
  const script = `
    import v8 from 'node:v8';
    ${capped ? `const { capYoungGeneration } = await import(${JSON.stringify(MODULE)}); capYoungGeneration();` : ''}
    let kept = [];
    let largest = 0;
    for (let round = 0; round < 400; round++) {
      for (let i = 0; i < 2000; i++) kept.push({ round, i, text: 'x' + i });
      if (kept.length > 40000) kept = [];
      await new Promise((resolve) => setTimeout(resolve, 1));
      const space = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
      largest = Math.max(largest, space.space_size);
    }
    console.log(largest);
  `;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 60_000 });
  return Number(stdout.trim());
}

describe('capYoungGeneration (the CLI\'s long-running commands)', () => {
  it('holds the new space at its cap where V8 would grow it to 32 MiB', async () => {
    const [free, capped] = await Promise.all([largestNewSpace(false), largestNewSpace(true)]);
    assert.ok(free > 2 * NEW_SPACE_CAP, `without the cap the workload grows the new space (${free} bytes): the test can tell`);
    // Growth doubles; a check every 20 ms may see one doubling past the cap at most.
    assert.ok(capped <= 2 * NEW_SPACE_CAP, `new space ${capped} bytes with a cap of ${NEW_SPACE_CAP}`);
  });
});
