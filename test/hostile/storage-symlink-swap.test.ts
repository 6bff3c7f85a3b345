import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FerryError } from '../../src/errors.js';
import { Store } from '../../src/storage/store.js';
import { tempDir } from '../helpers/fixtures.js';

const INSIDE = 'inside the root\n';
const OUTSIDE = 'OUTSIDE THE ROOT\n';
const SWAP_MS = 2500;

/**
 * Loops, as fast as it can: rename the folder `d` aside, put a symlink to `outside` in its
 * place, then put the folder back. Uploads may create a fresh `d` in the moment it is
 * missing: that one (inside the root) is removed. Prints how many swaps it made.
 */
const SWAPPER = `
const fs = require('fs');
const [root, outside, ms] = process.argv.slice(1);
const d = root + '/d', aside = root + '/d-aside';
const rm = (p) => { try { fs.rmSync(p, { recursive: true, force: true }); } catch {} };
const end = Date.now() + Number(ms);
let swaps = 0;
while (Date.now() < end) {
  try { fs.renameSync(d, aside); } catch { rm(d); continue; }
  let linked = false;
  for (let k = 0; k < 5 && !linked; k++) {
    try { fs.symlinkSync(outside, d); linked = true; } catch { rm(d); }
  }
  for (let i = 0; i < 200; i++); // let some operations meet the link
  for (;;) {
    rm(d); // removes the link itself, never what it points to
    try { fs.renameSync(aside, d); break; } catch {}
  }
  if (linked) swaps++;
}
process.stdout.write(String(swaps));
`;

async function swapFor(root: string, outside: string, ms: number): Promise<number> {
  const child = spawn(process.execPath, ['-e', SWAPPER, root, outside, String(ms)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, 'the swapper failed');
  return Number(out);
}

/** Everything under `dir`, relative, sorted (links not followed). */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    out.push(path.relative(dir, path.join(entry.parentPath, entry.name)));
  }
  return out.sort();
}

describe('storage against a folder swapped for a symlink (issue #9)', () => {
  let parent: string;
  let root: string;
  let outside: string;
  let store: Store;

  before(async () => {
    parent = await tempDir('ferry-swap-');
    root = path.join(parent, 'root');
    outside = path.join(parent, 'outside');
    await fs.mkdir(outside);
    await fs.writeFile(path.join(outside, 'secret.txt'), OUTSIDE);
    await fs.writeFile(path.join(outside, 'only-outside.txt'), OUTSIDE);
    store = await Store.open(root, { fsync: false });
    const upload = await store.beginUpload('d/secret.txt');
    upload.write(Buffer.from(INSIDE));
    await upload.commit({});
  });
  after(async () => {
    await store.close();
    await fs.rm(parent, { recursive: true, force: true });
  });

  it('never reads, lists or writes outside the root while the swap races every operation', async () => {
    const outsideBefore = await tree(outside);
    let running = true;
    let reads = 0;
    let writes = 0;
    const leaks: string[] = [];
    const unexpected: string[] = [];
    const worker = async (id: number): Promise<void> => {
      for (let n = 0; running; n++) {
        try {
          if (n % 3 === 2) {
            const upload = await store.beginUpload(`d/w-${id}-${n}.txt`);
            upload.write(Buffer.from(`written ${id} ${n}\n`));
            await upload.commit({});
            writes++;
          } else if (n % 7 === 1) {
            for (const entry of await store.list('d', true)) if (entry.name.includes('only-outside')) leaks.push(`listed ${entry.name}`);
          } else {
            const opened = await store.openRead('d/secret.txt');
            try {
              const { buffer } = await opened.handle.read(Buffer.alloc(64), 0, 64, 0);
              const text = buffer.subarray(0, opened.size).toString();
              if (text !== INSIDE) leaks.push(`read ${JSON.stringify(text)}`);
            } finally {
              await opened.handle.close();
            }
            reads++;
          }
        } catch (error) {
          // Refusals (the folder is a link or missing this instant) are the right answer.
          if (!(error instanceof FerryError)) unexpected.push(String(error));
        }
      }
    };
    const workers = Array.from({ length: 8 }, (_, id) => worker(id));
    let swaps: number;
    try {
      swaps = await swapFor(root, outside, SWAP_MS);
    } finally {
      running = false;
      await Promise.all(workers);
    }
    assert.deepEqual(leaks.slice(0, 5), [], `${leaks.length} operations went outside the root`);
    assert.deepEqual(unexpected.slice(0, 5), [], `${unexpected.length} operations failed unexpectedly`);
    assert.deepEqual(await tree(outside), outsideBefore, 'something was created outside the root');
    assert.equal(await fs.readFile(path.join(outside, 'secret.txt'), 'utf8'), OUTSIDE);
    assert.ok(swaps > 50, `only ${swaps} swaps`);
    assert.ok(reads > 50 && writes > 10, `only ${reads} reads and ${writes} writes ran`);
  });
});
