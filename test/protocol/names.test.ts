import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isValidName, nameProblem, printableName } from '../../src/protocol/names.js';
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

  it('escapes control characters for printing', () => {
    assert.equal(printableName('bad\u001b[31m'), 'bad\\u001b[31m');
    assert.equal(printableName('plain'), 'plain');
  });
});
