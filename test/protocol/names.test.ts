import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
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

  it('decides as the full check does on names of every shape (fast-check): the ASCII fast path accepts nothing more', () => {
    // The rules as written before the fast path, kept here as the reference.
    // eslint-disable-next-line no-control-regex
    const forbidden = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\\]/u;
    const acceptable = (name: string): boolean => {
      if (name.length === 0 || Buffer.byteLength(name) > 4096 || !name.isWellFormed() || name.normalize('NFC') !== name || forbidden.test(name) || name.startsWith('/')) return false;
      const components = name.split('/');
      if (components.length > MAX_NAME_DEPTH) return false;
      if (components.some((c) => c === '' || c === '.' || c === '..' || Buffer.byteLength(c) > 255)) return false;
      return components[0]!.toLowerCase() !== '.ferry';
    };
    const piece = fc.constantFrom('a', 'Z', '.', '..', '/', '//', '.ferry', '.FeRrY', '\\', ' ', '~', '\u007f', '\u0001', 'é', 'e\u0301', '\u202e', 'x'.repeat(250), '/'.repeat(30));
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 40 }), (pieces) => {
        const name = pieces.join('');
        assert.equal(nameProblem(name) === undefined, acceptable(name), JSON.stringify(name));
      }),
      { numRuns: 5000, seed: 12 },
    );
    for (const name of ['x'.repeat(255), 'x'.repeat(256), `${'y/'.repeat(63)}y`, `${'y/'.repeat(64)}y`, 'a'.repeat(4096), `${'a'.repeat(200)}/`.repeat(21), '.ferr', '.ferryy', 'a/.ferry']) {
      assert.equal(nameProblem(name) === undefined, acceptable(name), name.slice(0, 40));
    }
  });

  it('escapes control characters for printing', () => {
    assert.equal(printableName('bad\u001b[31m'), 'bad\\u001b[31m');
    assert.equal(printableName('plain'), 'plain');
  });
});
