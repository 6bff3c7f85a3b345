import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { blake3Available } from '../../src/io/digest.js';

const DIGEST_MODULE = fileURLToPath(new URL('../../src/io/digest.js', import.meta.url));
const DIGESTER_MODULE = fileURLToPath(new URL('../../src/io/digester.js', import.meta.url));

/** RSS growth of a child process running `loop` 30,000 times after one warm-up call. */
function growth(imports: string, loop: string): number {
  const script = `
    ${imports}
    const data = Buffer.alloc(1024, 7);
    ${loop};
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 30000; i++) { ${loop}; }
    process.stdout.write(String(process.memoryUsage().rss - before));`;
  return Number(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }));
}

/**
 * Issue 12: a BLAKE3 digest of one buffer must not leave a native hasher (~3 KB outside the
 * JS heap until a GC finalizes it) per call: at thousands of small files a second that grew
 * client and server by tens of MB.
 */
describe('digests of many small buffers', () => {
  it('30,000 BLAKE3 digests of 1 KiB grow the process by less than 25 MB', { skip: !blake3Available() && 'no BLAKE3 binding' }, () => {
    const grown = growth(`const { digestOf } = await import(${JSON.stringify(DIGEST_MODULE)});`, `digestOf('blake3', data)`);
    assert.ok(grown < 25 * 1024 * 1024, `grew by ${Math.round(grown / 1048576)} MB`);
  });

  it('30,000 streamed BLAKE3 digests of one small chunk (small uploads and downloads) grow it by less than 25 MB', { skip: !blake3Available() && 'no BLAKE3 binding' }, () => {
    const grown = growth(
      `const { createDigester } = await import(${JSON.stringify(DIGESTER_MODULE)});`,
      `const d = createDigester('blake3', 1024); d.update(data); await d.digest()`,
    );
    assert.ok(grown < 25 * 1024 * 1024, `grew by ${Math.round(grown / 1048576)} MB`);
  });

  it('a deferred BLAKE3 hash of several chunks equals the one-shot digest', { skip: !blake3Available() && 'no BLAKE3 binding' }, async () => {
    const { createDigester } = await import('../../src/io/digester.js');
    const { digestOf } = await import('../../src/io/digest.js');
    const data = Buffer.from(Array.from({ length: 200_000 }, (_, i) => i % 251));
    for (const cuts of [[], [10], [70_000], [5, 100_000, 150_000]]) {
      const digester = createDigester('blake3', data.length);
      let from = 0;
      for (const cut of [...cuts, data.length]) {
        const chunk = Buffer.from(data.subarray(from, cut));
        digester.update(chunk);
        chunk.fill(0); // the caller reuses its buffer
        from = cut;
      }
      assert.deepEqual(await digester.digest(), digestOf('blake3', data), `cuts ${cuts.join(',')}`);
    }
  });
});
