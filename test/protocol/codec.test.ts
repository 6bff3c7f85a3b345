import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ProtocolError } from '../../src/errors.js';
import {
  chunkHeader,
  Decoder,
  decodePayload,
  encodeMessage,
  MAX_CONTROL_PAYLOAD,
  MessageType,
  PutFlag,
  type Message,
} from '../../src/protocol/index.js';

const SHA_HELLO = Buffer.from('2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824', 'hex');
const B3_HELLO = Buffer.from('ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f', 'hex');
const entry = { name: 'a.txt', kind: 'file' as const, size: 5, mtimeMs: 1795300000000, digest: SHA_HELLO };

/** Hex fixtures, byte for byte as PROTOCOL.md documents them. */
const FIXTURES: [Message, string][] = [
  [{ type: 'HELLO', id: 0, version: 1, clientName: 'cli', flags: 0 }, '0000000f01000000004652525900010003636c6900000000'],
  [
    { type: 'SERVER_HELLO', id: 0, version: 1, serverName: 'srv', maxFileSize: 1099511627776, flags: 0 },
    '0000001781000000004652525900010003737276000001000000000000000000',
  ],
  [{ type: 'PUT', id: 1, name: 'a.txt', flags: 0, size: 5 }, '0000001012000000010005612e747874000000000000000005'],
  // v3: MTIME (0x20) appends the u64 modification time.
  [{ type: 'PUT', id: 11, name: 'a.txt', flags: 0x20, size: 5, mtimeMs: 1795300000000 }, '00000018120000000b0005612e747874200000000000000005000001a200380100'],
  [{ type: 'PUT_END', id: 1, digest: SHA_HELLO }, `000000201600000001${SHA_HELLO.toString('hex')}`],
  [
    { type: 'PUT_OK', id: 1, entry },
    `0000003893000000010005612e747874000000000000000005000001a200380100${SHA_HELLO.toString('hex')}`,
  ],
  [{ type: 'GET', id: 2, name: 'a.txt', offset: 0 }, '0000000f13000000020005612e7478740000000000000000'],
  [
    { type: 'GET_OK', id: 2, size: 5, offset: 0, mtimeMs: 1795300000000, digest: SHA_HELLO },
    `00000038940000000200000000000000050000000000000000000001a200380100${SHA_HELLO.toString('hex')}`,
  ],
  [{ type: 'LIST', id: 3, prefix: '', flags: 1 }, '000000031000000003000001'],
  [
    { type: 'ENTRIES', id: 3, more: false, entries: [entry] },
    `0000003b90000000030000010005612e747874000000000000000005000001a200380100${SHA_HELLO.toString('hex')}`,
  ],
  [{ type: 'STAT', id: 4, name: 'a.txt' }, '0000000711000000040005612e747874'],
  [
    { type: 'ENTRY', id: 4, entry },
    `0000003892000000040005612e747874000000000000000005000001a200380100${SHA_HELLO.toString('hex')}`,
  ],
  [{ type: 'PUT_READY', id: 7, offset: 0, prefixDigest: Buffer.alloc(32) }, `000000289500000007${'00'.repeat(40)}`],
  [{ type: 'DELETE', id: 5, name: 'a.txt', flags: 0 }, '0000000814000000050005612e74787400'],
  [{ type: 'OK', id: 5 }, '000000008000000005'],
  // §3.1: WORKING, and the HELLO / SERVER_HELLO of its example (flags BLAKE3|WORKING).
  [{ type: 'WORKING', id: 0 }, '000000008200000000'],
  [{ type: 'HELLO', id: 0, version: 7, clientName: 'cli', flags: 3 }, '0000000f01000000004652525900070003636c6900000003'],
  [{ type: 'SERVER_HELLO', id: 0, version: 7, serverName: 's', maxFileSize: 2 ** 40, flags: 6 }, '000000158100000000465252590007000173000001000000000000000006'],
  [{ type: 'ERROR', id: 6, code: 4, message: 'no file named "b"' }, '00000015ff00000006000400116e6f2066696c65206e616d656420226222'],
  [{ type: 'AUTH', id: 8, token: 'tok' }, '0000000502000000080003746f6b'],
  [{ type: 'PROBE_UPLOAD', id: 9, name: 'a.txt', size: 5 }, '0000000f15000000090005612e7478740000000000000005'],
  [{ type: 'HASH_PREFIX', id: 10, name: 'a.txt', length: 2 }, '0000000f170000000a0005612e7478740000000000000002'],
  [{ type: 'PARTIAL', id: 9, offset: 5, digest: SHA_HELLO }, `00000028960000000900000000000000${'05'}${SHA_HELLO.toString('hex')}`],
  // v5: a batch of "a.txt" ("hello") and the empty "b", with SKIP_IDENTICAL (0x08); its results.
  [
    {
      type: 'PUT_BATCH',
      id: 12,
      flags: 0x08,
      files: [
        { name: 'a.txt', digest: SHA_HELLO, data: Buffer.from('hello') },
        { name: 'b', digest: Buffer.from('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'hex'), data: Buffer.alloc(0) },
      ],
    },
    `0000005a180000000c0800020005612e74787400000005${SHA_HELLO.toString('hex')}68656c6c6f00016200000000e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855`,
  ],
  [
    { type: 'BATCH_RESULTS', id: 12, results: [{ status: 'stored', mtimeMs: 1795300000000 }, { status: 'refused', code: 5, message: '"b" already exists' }] },
    '00000022970000000c000200000001a200380100030005001222622220616c726561647920657869737473',
  ],
  [
    { type: 'BATCH_RESULTS', id: 13, results: [{ status: 'stored', name: 'a (1).txt', mtimeMs: 1795300000000 }, { status: 'identical', mtimeMs: 1795300000000 }] },
    '0000001f970000000d000201000961202831292e747874000001a20038010002000001a200380100',
  ],
  // v6: a GET_BATCH of "a.txt" ("hello"), "big" (70000 bytes) and the missing "nope"; its one frame.
  [{ type: 'GET_BATCH', id: 14, names: ['a.txt', 'big', 'nope'] }, '00000014190000000e00030005612e747874000362696700046e6f7065'],
  [
    {
      type: 'BATCH_FILES',
      id: 14,
      more: false,
      items: [
        { status: 'file', mtimeMs: 1795300000000, digest: SHA_HELLO, data: Buffer.from('hello') },
        { status: 'large', size: 70000 },
        { status: 'refused', code: 4, message: 'no file named "nope"' },
      ],
    },
    `00000057980000000e00000300000000050000${'01a200380100'}${SHA_HELLO.toString('hex')}68656c6c6f01000000000001117002000400146e6f2066696c65206e616d656420226e6f706522`,
  ],
  // v4: the client offers BLAKE3 (HELLO flag 1), the server agrees (SERVER_HELLO flag 2), and
  // every digest field then carries BLAKE3: here of "hello".
  [{ type: 'HELLO', id: 0, version: 4, clientName: 'cli', flags: 1 }, '0000000f01000000004652525900040003636c6900000001'],
  [
    { type: 'SERVER_HELLO', id: 0, version: 4, serverName: 'srv', maxFileSize: 1099511627776, flags: 2 },
    '0000001781000000004652525900040003737276000001000000000000000002',
  ],
  [{ type: 'PUT_END', id: 1, digest: B3_HELLO }, '000000201600000001ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f'],
];

function decodeAll(role: 'server' | 'client', bytes: Buffer, splits: number[] = []): { events: unknown[] } {
  const events: unknown[] = [];
  const decoder = new Decoder(role, {
    message: (m) => events.push(m),
    body: (id, data) => events.push({ body: id, data: Buffer.from(data).toString('hex') }),
    bodyEnd: (id) => events.push({ bodyEnd: id }),
  });
  let start = 0;
  for (const split of [...splits, bytes.length]) {
    decoder.push(bytes.subarray(start, split));
    start = split;
  }
  return { events };
}

/** Coalesces adjacent body events so results compare independently of how bytes were split. */
function normalize(events: unknown[]): unknown[] {
  const out: unknown[] = [];
  for (const event of events) {
    const last = out[out.length - 1] as { body?: number; data?: string } | undefined;
    const cur = event as { body?: number; data?: string };
    if (cur.body !== undefined && last?.body === cur.body) last.data += cur.data!;
    else out.push(typeof event === 'object' ? { ...(event as object) } : event);
  }
  return out;
}

const roleFor = (m: Message): 'server' | 'client' => (MessageType[m.type] >= 0x80 ? 'client' : 'server');

describe('codec', () => {
  for (const [message, hex] of FIXTURES) {
    it(`encodes ${message.type} to the documented bytes and back`, () => {
      const bytes = encodeMessage(message);
      assert.equal(bytes.toString('hex'), hex);
      const role = roleFor(message);
      if (message.type === 'PUT' || message.type === 'GET_OK') return; // bodies: tested below
      const { events } = decodeAll(role, bytes);
      assert.deepEqual(events, [message]);
    });
  }

  it('decodes an upload (PUT, body, PUT_END) split at every byte boundary', () => {
    const body = Buffer.from('hello');
    const stream = Buffer.concat([
      encodeMessage({ type: 'HELLO', id: 0, version: 1, clientName: 'cli', flags: 0 }),
      encodeMessage({ type: 'PUT', id: 1, name: 'a.txt', flags: 0, size: 5 }),
      body,
      encodeMessage({ type: 'PUT_END', id: 1, digest: SHA_HELLO }),
      encodeMessage({ type: 'DELETE', id: 2, name: 'x', flags: 0 }),
    ]);
    const whole = normalize(decodeAll('server', stream).events);
    assert.equal(whole.length, 6);
    assert.deepEqual(whole[2], { body: 1, data: body.toString('hex') });
    for (let i = 1; i < stream.length; i++) {
      assert.deepEqual(normalize(decodeAll('server', stream, [i]).events), whole, `split at ${i}`);
    }
    // and one byte at a time
    const everyByte = Array.from({ length: stream.length - 1 }, (_, i) => i + 1);
    assert.deepEqual(normalize(decodeAll('server', stream, everyByte).events), whole);
  });

  it('after detachBuffered the pushed memory may be reused: one read buffer, split anywhere', () => {
    const stream = Buffer.concat([
      encodeMessage({ type: 'HELLO', id: 0, version: 4, clientName: 'cli', flags: 0 }),
      encodeMessage({ type: 'PUT', id: 1, name: 'a.txt', flags: 0, size: 5 }),
      Buffer.from('hello'),
      encodeMessage({ type: 'PUT_END', id: 1, digest: SHA_HELLO }),
    ]);
    const whole = normalize(decodeAll('server', stream).events);
    for (let split = 1; split < stream.length; split++) {
      const events: unknown[] = [];
      const decoder = new Decoder('server', {
        message: (m) => events.push(m),
        body: (id, data) => events.push({ body: id, data: Buffer.from(data).toString('hex') }),
        bodyEnd: (id) => events.push({ bodyEnd: id }),
      });
      const region = Buffer.alloc(stream.length); // read into again and again, like a slab
      for (const [from, to] of [[0, split], [split, stream.length]] as const) {
        stream.copy(region, 0, from, to);
        decoder.push(region.subarray(0, to - from));
        decoder.detachBuffered();
        region.fill(0xaa);
      }
      assert.deepEqual(normalize(events), whole, `split at ${split}`);
    }
  });

  it('decodes a download (GET_OK then body) and a zero-byte body', () => {
    const stream = Buffer.concat([
      encodeMessage({ type: 'GET_OK', id: 2, size: 3, offset: 0, mtimeMs: 1, digest: SHA_HELLO }),
      Buffer.from('abc'),
      encodeMessage({ type: 'GET_OK', id: 3, size: 0, offset: 0, mtimeMs: 1, digest: SHA_HELLO }),
      encodeMessage({ type: 'OK', id: 4 }),
    ]);
    for (let i = 1; i < stream.length; i++) {
      const events = normalize(decodeAll('client', stream, [i]).events);
      assert.deepEqual(
        events.map((e) => (e as { type?: string }).type ?? Object.keys(e as object)[0]),
        ['GET_OK', 'body', 'bodyEnd', 'GET_OK', 'bodyEnd', 'OK'],
        `split at ${i}`,
      );
    }
  });

  it('decodes a chunked body split anywhere', () => {
    const stream = Buffer.concat([
      encodeMessage({ type: 'PUT', id: 9, name: 'pipe', flags: PutFlag.CHUNKED, size: 0 }),
      chunkHeader(3),
      Buffer.from('abc'),
      chunkHeader(2),
      Buffer.from('de'),
      chunkHeader(0),
      encodeMessage({ type: 'PUT_END', id: 9, digest: SHA_HELLO }),
    ]);
    const whole = normalize(decodeAll('server', stream).events);
    assert.deepEqual(whole[1], { body: 9, data: Buffer.from('abcde').toString('hex') });
    assert.deepEqual(whole[2], { bodyEnd: 9 });
    for (let i = 1; i < stream.length; i++) {
      assert.deepEqual(normalize(decodeAll('server', stream, [i]).events), whole, `split at ${i}`);
    }
  });

  it('refuses a frame longer than the control cap before allocating', () => {
    const header = Buffer.from('000100011000000001', 'hex'); // payload length 65537
    assert.throws(() => decodeAll('server', header), ProtocolError);
    const atCap = Buffer.alloc(9);
    atCap.writeUInt32BE(MAX_CONTROL_PAYLOAD, 0);
    atCap.writeUInt8(MessageType.STAT, 4);
    // exactly at the cap is allowed (the payload is then malformed, but not oversize)
    assert.doesNotThrow(() => decodeAll('server', atCap));
  });

  it('refuses length fields of 2^32-1 and oversized chunks', () => {
    assert.throws(() => decodeAll('server', Buffer.from('ffffffff1000000001', 'hex')), /exceeds/);
    const stream = Buffer.concat([
      encodeMessage({ type: 'PUT', id: 1, name: 'p', flags: PutFlag.CHUNKED, size: 0 }),
      Buffer.from('ffffffff', 'hex'),
    ]);
    assert.throws(() => decodeAll('server', stream), /chunk/);
  });

  it('refuses u64 values above 2^53-1', () => {
    const payload = Buffer.concat([Buffer.from('00016100', 'hex'), Buffer.from('0020000000000001', 'hex')]);
    assert.throws(() => decodePayload(MessageType.PUT, 1, payload), /out of range/);
    const largest = Buffer.concat([Buffer.from('00016100', 'hex'), Buffer.from('001fffffffffffff', 'hex')]);
    assert.equal((decodePayload(MessageType.PUT, 1, largest) as { size: number }).size, Number.MAX_SAFE_INTEGER);
    const above32 = Buffer.concat([Buffer.from('00016100', 'hex'), Buffer.from('0000000100000002', 'hex')]);
    assert.equal((decodePayload(MessageType.PUT, 1, above32) as { size: number }).size, 2 ** 32 + 2);
  });

  it('carries u64 values exactly up to 2^53-1, and strings byte for byte', () => {
    for (const size of [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 52 + 3, Number.MAX_SAFE_INTEGER]) {
      const bytes = encodeMessage({ type: 'GET', id: 7, name: 'é/日本.txt', offset: size });
      const high = Math.floor(size / 2 ** 32).toString(16).padStart(8, '0');
      const low = (size % 2 ** 32).toString(16).padStart(8, '0');
      assert.equal(bytes.subarray(9).toString('hex'), `000d${Buffer.from('é/日本.txt').toString('hex')}${high}${low}`, String(size));
      assert.deepEqual(decodePayload(MessageType.GET, 7, bytes.subarray(9)), { type: 'GET', id: 7, name: 'é/日本.txt', offset: size });
    }
    assert.throws(() => encodeMessage({ type: 'GET', id: 7, name: 'a', offset: -1 }), RangeError);
    assert.throws(() => encodeMessage({ type: 'GET', id: 7, name: 'a', offset: 1.5 }), RangeError);
  });

  it('refuses overlong, surrogate and truncated UTF-8 in a name', () => {
    for (const bad of ['c0af', 'eda080', 'e282', 'f8888080', 'ff']) {
      const payload = Buffer.concat([Buffer.from([0, bad.length / 2]), Buffer.from(bad, 'hex')]);
      assert.throws(() => decodePayload(MessageType.STAT, 1, payload), /not valid UTF-8/, bad);
    }
  });

  it('frames a reply near the control cap in a buffer of its own size', () => {
    const items = Array.from({ length: 62 }, (_, i) => ({ status: 'file' as const, mtimeMs: i, digest: SHA_HELLO, data: Buffer.alloc(1000, i) }));
    const bytes = encodeMessage({ type: 'BATCH_FILES', id: 3, more: false, items });
    assert.equal(bytes.readUInt32BE(0), bytes.length - 9);
    assert.ok(bytes.buffer.byteLength - bytes.length <= 4096, `${bytes.buffer.byteLength} bytes held for a frame of ${bytes.length}`);
    assert.deepEqual(decodePayload(MessageType.BATCH_FILES, 3, bytes.subarray(9)), { type: 'BATCH_FILES', id: 3, more: false, items });
  });

  it('refuses unknown types, trailing bytes, short payloads, bad UTF-8 and wrong direction', () => {
    assert.throws(() => decodePayload(0x42, 1, Buffer.alloc(0)), /unknown message type/);
    assert.throws(() => decodePayload(MessageType.OK, 1, Buffer.from([0])), /trailing/);
    assert.throws(() => decodePayload(MessageType.WORKING, 3, Buffer.alloc(0)), /WORKING with request id 3/);
    assert.throws(() => decodePayload(MessageType.WORKING, 0, Buffer.from([0])), /trailing/);
    assert.throws(() => decodePayload(MessageType.STAT, 1, Buffer.from('0005ab', 'hex')), /too short/);
    assert.throws(() => decodePayload(MessageType.STAT, 1, Buffer.from('0002c328', 'hex')), /UTF-8/);
    assert.throws(() => decodePayload(MessageType.STAT, 1, Buffer.from('0003eda080', 'hex')), /UTF-8/, 'a UTF-16 surrogate');
    assert.throws(() => decodePayload(MessageType.STAT, 1, Buffer.from('0002c0af', 'hex')), /UTF-8/, 'an overlong encoding');
    assert.throws(() => decodeAll('server', encodeMessage({ type: 'OK', id: 1 })), /may not be sent/);
    assert.throws(() => decodeAll('client', encodeMessage({ type: 'STAT', id: 1, name: 'a' })), /may not be sent/);
    assert.throws(
      () => decodeAll('server', encodeMessage({ type: 'PUT', id: 1, name: 'a', flags: PutFlag.CHUNKED, size: 3 })),
      /chunked PUT must declare size 0/,
    );
  });

  it('refuses bytes sent before PUT_READY, and resumes after expectBody', () => {
    const events: unknown[] = [];
    const decoder = new Decoder('server', {
      message: (m) => events.push(m.type),
      body: (_id, d) => events.push(d.toString()),
      bodyEnd: () => events.push('end'),
    });
    decoder.push(encodeMessage({ type: 'PUT', id: 4, name: 'big', flags: PutFlag.AWAIT_READY, size: 2 }));
    assert.equal(decoder.awaitingReadyFor, 4);
    decoder.expectBody(4, 2);
    decoder.push(Buffer.concat([Buffer.from('hi'), encodeMessage({ type: 'PUT_END', id: 4, digest: SHA_HELLO })]));
    assert.deepEqual(events, ['PUT', 'hi', 'end', 'PUT_END']);

    const early = new Decoder('server', { message: () => undefined, body: () => undefined, bodyEnd: () => undefined });
    early.push(encodeMessage({ type: 'PUT', id: 4, name: 'big', flags: PutFlag.AWAIT_READY, size: 2 }));
    assert.throws(() => early.push(Buffer.from('hi')), /before PUT_READY/);
  });

  it('survives random garbage: it only ever throws ProtocolError (fast-check, seeded)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 1, max: 50 }), (bytes, step) => {
        for (const role of ['server', 'client'] as const) {
          const decoder = new Decoder(role, { message: () => undefined, body: () => undefined, bodyEnd: () => undefined });
          try {
            for (let i = 0; i < bytes.length; i += step) decoder.push(Buffer.from(bytes.subarray(i, i + step)));
          } catch (error) {
            if (!(error instanceof ProtocolError)) throw error;
          }
        }
      }),
      { seed: 20261121, numRuns: 3000 },
    );
  });

  it('round-trips arbitrary valid messages through encode and decode (fast-check)', () => {
    const name = fc.string({ minLength: 1, maxLength: 40 });
    const size = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
    const sha = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((a) => Buffer.from(a));
    const id = fc.integer({ min: 1, max: 0xffffffff });
    const message: fc.Arbitrary<Message> = fc.oneof(
      fc.record({ type: fc.constant('STAT' as const), id, name }),
      fc.record({ type: fc.constant('GET' as const), id, name, offset: size }),
      fc.record({ type: fc.constant('DELETE' as const), id, name, flags: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ type: fc.constant('PUT_END' as const), id, digest: sha }),
      fc.record({ type: fc.constant('ERROR' as const), id, code: fc.integer({ min: 0, max: 65535 }), message: name }),
      fc.record({
        type: fc.constant('ENTRY' as const),
        id,
        entry: fc.record({ name, kind: fc.constantFrom('file' as const, 'folder' as const), size, mtimeMs: size, digest: sha }),
      }),
    );
    fc.assert(
      fc.property(message, (m) => {
        const { events } = decodeAll(roleFor(m), encodeMessage(m));
        // compare as JSON: fast-check builds null-prototype records
        assert.deepEqual(JSON.parse(JSON.stringify(events)), JSON.parse(JSON.stringify([m])));
      }),
      { seed: 7, numRuns: 1000 },
    );
  });
});
