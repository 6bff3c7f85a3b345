import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { readSmallFile } from '../../src/io/small-file.js';
import { randomData, tempDir } from '../helpers/fixtures.js';

describe('readSmallFile', () => {
  it('reads a file of the expected size, one that shrank, one that grew and an empty one', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'f');
    const data = randomData(3000);
    writeFileSync(file, data);
    assert.ok(readSmallFile(file, 3000).equals(data));
    assert.ok(readSmallFile(file, 5000).equals(data), 'shrank since the walk: what it holds now');
    assert.ok(readSmallFile(file, 2999).equals(data), 'grew by one byte: read whole');
    assert.ok(readSmallFile(file, 10).equals(data), 'grew a lot: read whole');
    writeFileSync(file, '');
    assert.equal(readSmallFile(file, 0).length, 0);
    assert.throws(() => readSmallFile(path.join(dir, 'missing'), 1), /ENOENT/);
  });
});
