import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  formatClientLine,
  formatErrorLine,
  formatServerLine,
  inRange,
  MAX_LINE_BYTES,
  nameProblem,
  parseClientLine,
  parseInteger,
  parseServerLine,
} from '../../src/services/exchange-protocol.js';
import { LineBuffer } from '../../src/services/line-buffer.js';

describe('exchange protocol', () => {
  it('formats the two wire lines exactly', () => {
    assert.equal(formatClientLine({ name: 'alice', value: 7n }), 'Client of alice: 7\n');
    assert.equal(formatServerLine({ name: 'ferry', value: 42n }), 'Server of ferry: 42\n');
    assert.equal(formatErrorLine('bad\nthing'), 'ERROR bad\\u000athing\n');
  });

  it('parses a client line, taking the integer after the last ": "', () => {
    assert.deepEqual(parseClientLine('Client of alice: 7'), { ok: true, value: { name: 'alice', value: 7n } });
    assert.deepEqual(parseClientLine('Client of a: b: -3'), { ok: true, value: { name: 'a: b', value: -3n } });
    assert.deepEqual(parseClientLine('Client of Zoë Ünal: 100'), { ok: true, value: { name: 'Zoë Ünal', value: 100n } });
    const huge = parseClientLine('Client of x: 123456789012345678901234567890');
    assert.ok(huge.ok && huge.value.value === 123456789012345678901234567890n);
  });

  it('refuses malformed client lines with a reason', () => {
    const reasons = (line: string): string => {
      const parsed = parseClientLine(line);
      assert.equal(parsed.ok, false, line);
      return parsed.ok ? '' : parsed.reason;
    };
    assert.match(reasons('hello'), /expected "Client of <name>: <integer>"/);
    assert.match(reasons('Server of x: 1'), /expected "Client of/);
    assert.match(reasons('Client of x 1'), /expected/);
    assert.match(reasons('Client of : 1'), /name is empty/);
    assert.match(reasons('Client of x: 3.5'), /"3\.5" is not an integer/);
    assert.match(reasons('Client of x: '), /is not an integer/);
    assert.match(reasons('Client of x: 1e3'), /is not an integer/);
    assert.match(reasons('Client of \u001b[31mred: 1'), /control character/);
  });

  it('parses the server answer and an ERROR reply', () => {
    assert.deepEqual(parseServerLine('Server of ferry: 42'), { ok: true, value: { kind: 'answer', greeting: { name: 'ferry', value: 42n } } });
    assert.deepEqual(parseServerLine('ERROR line is too long'), { ok: true, value: { kind: 'error', reason: 'line is too long' } });
    assert.equal(parseServerLine('Client of x: 1').ok, false);
  });

  it('reads integers and the 1–100 range', () => {
    assert.equal(parseInteger('007'), 7n);
    assert.equal(parseInteger(' -12 '), -12n);
    assert.equal(parseInteger('+5'), 5n);
    assert.equal(parseInteger('5x'), undefined);
    assert.equal(parseInteger(''), undefined);
    assert.deepEqual([0n, 1n, 100n, 101n, -1n].map(inRange), [false, true, true, false, false]);
    assert.equal(nameProblem('ok name'), undefined);
    assert.match(nameProblem('x'.repeat(300)) ?? '', /longer than 256 bytes/);
  });
});

describe('LineBuffer', () => {
  it('returns the first line, across split chunks, with \\n or \\r\\n', () => {
    const buffer = new LineBuffer(MAX_LINE_BYTES);
    assert.equal(buffer.push(Buffer.from('Client of')), undefined);
    assert.equal(buffer.push(Buffer.from(' a: 1\r')), undefined);
    assert.deepEqual(buffer.push(Buffer.from('\nnext line')), { kind: 'line', text: 'Client of a: 1' });
    const plain = new LineBuffer(MAX_LINE_BYTES);
    assert.deepEqual(plain.push(Buffer.from('abc\n')), { kind: 'line', text: 'abc' });
  });

  it('accepts exactly 1024 bytes and refuses 1025 as soon as they arrive', () => {
    const exact = new LineBuffer(1024);
    assert.equal(exact.push(Buffer.alloc(1024, 'a')), undefined);
    assert.deepEqual(exact.push(Buffer.from('\r\n')), { kind: 'line', text: 'a'.repeat(1024) });

    const over = new LineBuffer(1024);
    assert.equal(over.push(Buffer.alloc(1025, 'a')), undefined, 'one byte of slack for a \\r');
    assert.deepEqual(over.push(Buffer.from('a')), { kind: 'malformed', reason: 'line is longer than 1024 bytes' });

    const terminated = new LineBuffer(1024);
    assert.deepEqual(terminated.push(Buffer.from(`${'a'.repeat(1025)}\n`)), { kind: 'malformed', reason: 'line is longer than 1024 bytes' });
  });

  it('refuses invalid UTF-8, and takes an unterminated last line at end of stream', () => {
    assert.deepEqual(new LineBuffer(1024).push(Buffer.from([0x41, 0xff, 0x0a])), { kind: 'malformed', reason: 'line is not valid UTF-8' });
    const unterminated = new LineBuffer(1024);
    unterminated.push(Buffer.from('Client of a: 1'));
    assert.deepEqual(unterminated.end(), { kind: 'line', text: 'Client of a: 1' });
    assert.equal(new LineBuffer(1024).end().kind, 'malformed');
  });
});
