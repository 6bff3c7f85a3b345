import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { blake3Available } from '../../src/io/digest.js';

const DIGEST_MODULE = fileURLToPath(new URL('../../src/io/digest.js', import.meta.url));

/**
 * Issue 12: a BLAKE3 digest of one buffer must not leave a native hasher (~3 KB outside the
 * JS heap until a GC finalizes it) per call: at thousands of small files a second that grew
 * client and server by tens of MB.
 */
describe('digests of many small buffers', () => {
  it('30,000 BLAKE3 digests of 1 KiB grow the process by less than 25 MB', { skip: !blake3Available() && 'no BLAKE3 binding' }, () => {
    const script = `
      const { digestOf } = await import(${JSON.stringify(DIGEST_MODULE)});
      const data = Buffer.alloc(1024, 7);
      digestOf('blake3', data);
      const before = process.memoryUsage().rss;
      for (let i = 0; i < 30000; i++) digestOf('blake3', data);
      process.stdout.write(String(process.memoryUsage().rss - before));`;
    const grown = Number(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }));
    assert.ok(grown < 25 * 1024 * 1024, `grew by ${Math.round(grown / 1048576)} MB`);
  });
});
