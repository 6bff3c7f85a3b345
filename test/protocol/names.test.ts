import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isValidName, MAX_NAME_DEPTH, nameProblem, printableName } from '../../src/protocol/names.js';
import { BAD_NAMES } from '../helpers/bad-names.js';



describe('names', () => {
  for (const [name, why] of BAD_NAMES) {
    it(`refuses ${why}`, () => {
      assert.notEqual(nameProblem(name), undefined, JSON.stringify(name));
    });
  }

  it('accepts ordinary names, folders, spaces, unicode and dots inside', () => {
    for (const name of ['a', 'report.pdf', 'a/b/c.txt', 'with space.txt', 'été/naïve.txt', '..hidden', 'a..b', '.ferryish', 'x'.repeat(255), 'C:foo', '%2e%2e/x']) {
      assert.equal(nameProblem(name), undefined, name);
    }
    assert.ok(isValidName('é'));
  });

  it(`limits a name to ${MAX_NAME_DEPTH} components`, () => {
    assert.equal(nameProblem(Array.from({ length: MAX_NAME_DEPTH }, () => 'a').join('/')), undefined);
    assert.match(nameProblem(Array.from({ length: MAX_NAME_DEPTH + 1 }, () => 'a').join('/')) ?? '', /more than 64 path components/);
    // The shape of issue #9: 2,048 components in under 4,096 bytes.
    const deep = `${'a/'.repeat(2047)}a`;
    assert.ok(Buffer.byteLength(deep) < 4096);
    assert.notEqual(nameProblem(deep), undefined);
  });

  it('reserves .ferry as the first component in any letter case', () => {
    for (const name of ['.FERRY', '.Ferry/x', '.fErRy/tmp/y']) assert.match(nameProblem(name) ?? '', /reserved/, name);
    for (const name of ['x/.FERRY', 'x/.ferry', '.ferry2', '.FERRYish']) assert.equal(nameProblem(name), undefined, name);
  });

  it('escapes control characters for printing', () => {
    assert.equal(printableName('bad\u001b[31m'), 'bad\\u001b[31m');
    assert.equal(printableName('plain'), 'plain');
  });
});
