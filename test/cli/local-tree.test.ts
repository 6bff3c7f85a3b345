import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { folderEntries, streamLocalTree } from '../../src/cli/local-tree.js';
import { tempDir } from '../helpers/fixtures.js';

/** Descriptors of this process open on `dir` or a folder under it. */
async function openUnder(dir: string): Promise<number> {
  let count = 0;
  for (const fd of await fs.readdir('/proc/self/fd')) {
    const target = await fs.readlink(path.join('/proc/self/fd', fd)).catch(() => '');
    if (target === dir || target.startsWith(`${dir}/`)) count++;
  }
  return count;
}

/**
 * Issue 12: `put -r` walks the local tree as it sends it, holding a bounded number of names:
 * a flat folder of 100,000 files is read in groups, never whole.
 */
describe('the local tree walk (put -r)', () => {
  let root: string;
  const flat = Array.from({ length: 25 }, (_, i) => `file-${String(24 - i).padStart(2, '0')}.txt`);

  before(async () => {
    root = await fs.realpath(await tempDir());
    await fs.mkdir(path.join(root, 'flat'));
    for (const name of flat) await fs.writeFile(path.join(root, 'flat', name), name);
    await fs.mkdir(path.join(root, 'small'));
    for (const name of ['c.txt', 'a.txt', 'b.txt']) await fs.writeFile(path.join(root, 'small', name), name);
  });
  after(async () => fs.rm(root, { recursive: true, force: true }));

  it('reads a folder larger than the bound in groups of at most that many names', async () => {
    const groups: string[][] = [];
    for await (const group of folderEntries(path.join(root, 'flat'), 10)) groups.push(group.map((entry) => entry.name));
    assert.deepEqual(
      groups.map((group) => group.length),
      [10, 10, 5],
    );
    for (const group of groups) assert.deepEqual(group, [...group].sort(), 'each group in name order');
    assert.deepEqual(groups.flat().sort(), [...flat].sort());
  });

  it('walks every file once, a folder within the bound in name order', async () => {
    const seen: string[] = [];
    for await (const file of streamLocalTree(root, () => undefined, 10)) seen.push(file.relative);
    assert.deepEqual([...seen].sort(), [...flat.map((name) => `flat/${name}`), 'small/a.txt', 'small/b.txt', 'small/c.txt'].sort());
    assert.deepEqual(
      seen.filter((name) => name.startsWith('small/')),
      ['small/a.txt', 'small/b.txt', 'small/c.txt'],
    );
  });

  it('closes the folders it holds open when the walk is stopped early', async () => {
    const walk = streamLocalTree(root, () => undefined, 10);
    const first = await walk.next();
    assert.equal(first.done, false);
    assert.ok((await openUnder(root)) > 0, 'the walk holds its folders open while it runs');
    await walk.return(undefined);
    assert.equal(await openUnder(root), 0);
  });
});
