import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { complete, type Candidate, type CompletionSources } from '../../src/services/shell-completion.js';
import { escapeForLine, splitWords } from '../../src/services/shell-words.js';

describe('shell words', () => {
  it('splits on blanks, honouring quotes and backslashes', () => {
    assert.deepEqual(splitWords('put  a.txt   b.txt '), { ok: true, words: ['put', 'a.txt', 'b.txt'] });
    assert.deepEqual(splitWords('put "my file.txt" \'it\'\'s\''), { ok: true, words: ['put', 'my file.txt', 'its'] });
    assert.deepEqual(splitWords('get my\\ file.txt "say \\"hi\\""'), { ok: true, words: ['get', 'my file.txt', 'say "hi"'] });
    assert.deepEqual(splitWords('   '), { ok: true, words: [] });
    assert.deepEqual(splitWords('get "open'), { ok: false, reason: 'unterminated " quote' });
  });

  it('escapes completion text for the quote the user is in', () => {
    assert.equal(escapeForLine('a b"c', undefined), 'a\\ b\\"c');
    assert.equal(escapeForLine('a b"c', '"'), 'a b\\"c');
    assert.equal(escapeForLine('a b', "'"), 'a b');
  });
});

describe('shell completion', () => {
  const remote: Record<string, Candidate[]> = {
    '': [
      { name: 'report 2026.pdf', folder: false },
      { name: 'reports', folder: true },
      { name: 'notes.txt', folder: false },
    ],
    reports: [{ name: 'reports/q1.csv', folder: false }],
  };
  const local: Record<string, Candidate[]> = {
    '': [
      { name: 'photo.jpg', folder: false },
      { name: 'pics', folder: true },
      { name: '.hidden', folder: false },
    ],
  };
  const sources: CompletionSources = {
    remote: async (dir) => remote[dir] ?? [],
    local: async (dir) => local[dir] ?? [],
  };

  it('completes commands in first position', async () => {
    assert.deepEqual(await complete('l', sources), [['ls ', 'lls ', 'lcd '], 'l']);
    assert.deepEqual(await complete('he', sources), [['help '], 'he']);
    assert.deepEqual(await complete('', sources), [['ls ', 'cd ', 'pwd ', 'stat ', 'put ', 'get ', 'rm ', 'lls ', 'lcd ', 'help ', 'quit ', 'exit '], '']);
  });

  it('completes remote names for get/rm/ls, a folder level at a time, escaping blanks', async () => {
    assert.deepEqual(await complete('get rep', sources), [['report\\ 2026.pdf', 'reports/'], 'rep']);
    assert.deepEqual(await complete('rm reports/', sources), [['reports/q1.csv'], 'reports/']);
    assert.deepEqual(await complete('get "rep', sources), [['"report 2026.pdf"', '"reports/'], '"rep']);
    assert.deepEqual(await complete('ls n', sources), [['notes.txt'], 'n']);
  });

  it('completes local names for put and folders for lcd, hiding dot files', async () => {
    assert.deepEqual(await complete('put p', sources), [['photo.jpg', 'pics/'], 'p']);
    assert.deepEqual(await complete('put ', sources), [['photo.jpg', 'pics/'], '']);
    assert.deepEqual(await complete('put .', sources), [['.hidden'], '.']);
    assert.deepEqual(await complete('lcd ', sources), [['pics/'], '']);
    // put's second argument is a remote name; -f is an option, not an argument.
    assert.deepEqual(await complete('put -f photo.jpg rep', sources), [['report\\ 2026.pdf', 'reports/'], 'rep']);
  });

  it('offers nothing when the lookup fails', async () => {
    const failing: CompletionSources = { remote: () => Promise.reject(new Error('gone')), local: () => Promise.reject(new Error('gone')) };
    assert.deepEqual(await complete('get x', failing), [[], 'x']);
  });
});
