import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { printableName } from '../../client/index.js';
import { humanSize } from '../format.js';
import { withClient } from '../client-session.js';
import type { ClientOptions } from '../session.js';

export interface RoundtripOptions extends ClientOptions {
  as?: string;
  output?: string;
  overwrite?: boolean;
  quiet?: boolean;
}

/**
 * The classic check: upload over one connection, close it, download over a second, and
 * compare the copy with the original byte for byte. Returns the exit code (0 identical, 1 not).
 */
export async function roundtrip(file: string, options: RoundtripOptions): Promise<number> {
  const name = options.as ?? path.basename(file);
  const uploaded = await withClient(options, (client) => client.put(file, name, { overwrite: options.overwrite }));
  const scratch = options.output === undefined ? await fs.mkdtemp(path.join(os.tmpdir(), 'ferry-roundtrip-')) : undefined;
  const copy = options.output ?? path.join(scratch!, path.basename(name));
  try {
    const downloaded = await withClient(options, (client) => client.get(uploaded.name, copy));
    const difference = await firstDifference(file, copy);
    if (difference === undefined) {
      process.stdout.write(
        `identical: ${file} and ${options.output ?? `the downloaded copy of ${printableName(uploaded.name)}`} (${downloaded.size} bytes, ${humanSize(downloaded.size)}, ${downloaded.algorithm} ${downloaded.digest})\n`,
      );
      return 0;
    }
    process.stdout.write(`DIFFERENT: ${file} and the downloaded copy ${difference}\n`);
    return 1;
  } finally {
    if (scratch !== undefined) await fs.rm(scratch, { recursive: true, force: true });
  }
}

/** Describes where two files first differ, or undefined if they are byte-for-byte equal. */
export async function firstDifference(a: string, b: string): Promise<string | undefined> {
  const [fa, fb] = await Promise.all([fs.open(a, 'r'), fs.open(b, 'r')]);
  try {
    const [sa, sb] = await Promise.all([fa.stat(), fb.stat()]);
    const bufA = Buffer.allocUnsafe(1024 * 1024);
    const bufB = Buffer.allocUnsafe(1024 * 1024);
    let position = 0;
    const common = Math.min(sa.size, sb.size);
    while (position < common) {
      const n = Math.min(bufA.length, common - position);
      await Promise.all([fa.read(bufA, 0, n, position), fb.read(bufB, 0, n, position)]);
      if (bufA.compare(bufB, 0, n, 0, n) !== 0) {
        for (let i = 0; i < n; i++) if (bufA[i] !== bufB[i]) return `differ first at byte ${position + i}`;
      }
      position += n;
    }
    if (sa.size !== sb.size) return `differ in size: ${sa.size} vs ${sb.size} bytes`;
    return undefined;
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}
