import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { WireErrorCode } from '../../src/errors.js';
import { RequestMeter, ServerEvents, type RequestEvent } from '../../src/server/events.js';
import { PutFlag, type Message } from '../../src/protocol/index.js';
import { connect } from '../../src/index.js';
import { startServer } from '../helpers/fixtures.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { RawPeer } from '../helpers/raw-peer.js';

/** The engine's observer seam: request events, their durations on the server's clock, listener failures. */

/** A reply as the meter sees it: only its type and id matter (the digest fields are not its business). */
function reply(type: 'PUT_READY' | 'PUT_OK', id: number): Message {
  return { type, id } as unknown as Message;
}

describe('RequestMeter', () => {
  function metered(): { meter: RequestMeter; clock: ManualClock; seen: RequestEvent[] } {
    const events = new ServerEvents();
    const seen: RequestEvent[] = [];
    events.on('request', (event) => seen.push(event));
    const clock = new ManualClock();
    return { meter: new RequestMeter(events, clock), clock, seen };
  }

  it('times a request from arrival to its final reply, on the clock', () => {
    const { meter, clock, seen } = metered();
    meter.received({ type: 'STAT', id: 7, name: 'a' });
    clock.advance(250);
    meter.replied({ type: 'ERROR', id: 7, code: WireErrorCode.NOT_FOUND, message: 'no' });
    meter.replied({ type: 'OK', id: 7 }); // no second answer for the same request
    assert.deepEqual(seen, [{ type: 'STAT', result: 'NOT_FOUND', durationMs: 250 }]);
  });

  it('a PUT ends at PUT_OK, not at PUT_READY; GET and LIST when their reply is written whole', async () => {
    const { meter, clock, seen } = metered();
    meter.received({ type: 'PUT', id: 1, name: 'a', flags: PutFlag.AWAIT_READY, size: 1 });
    meter.received({ type: 'GET', id: 2, name: 'b', offset: 0 });
    meter.replied(reply('PUT_READY', 1));
    clock.advance(40);
    await meter.whole(2, Promise.resolve());
    clock.advance(60);
    meter.replied(reply('PUT_OK', 1));
    assert.deepEqual(seen, [
      { type: 'GET', result: 'OK', durationMs: 40 },
      { type: 'PUT', result: 'OK', durationMs: 100 },
    ]);
  });

  it('what is unanswered when the connection closes ends as CLOSED; PUT_END and id 0 are not requests', () => {
    const { meter, clock, seen } = metered();
    meter.received({ type: 'PUT_END', id: 3, digest: Buffer.alloc(32) });
    meter.received({ type: 'LIST', id: 4, prefix: '', flags: 0 });
    clock.advance(5);
    meter.replied({ type: 'ERROR', id: 0, code: WireErrorCode.PROTOCOL, message: 'bye' });
    meter.closed();
    meter.closed();
    assert.deepEqual(seen, [{ type: 'LIST', result: 'CLOSED', durationMs: 5 }]);
  });
});

describe('ServerEvents on a real server', () => {
  it('reports a PUT with its exact duration on the server clock', async () => {
    const clock = new ManualClock();
    const server = await startServer({ clock });
    const seen: RequestEvent[] = [];
    server.server.events.on('request', (event) => seen.push(event));
    const peer = await RawPeer.connect(server.address.port);
    try {
      const body = Buffer.from('0123456789');
      peer.send({ type: 'PUT', id: 1, name: 'timed.txt', flags: PutFlag.AWAIT_READY, size: body.length });
      await peer.waitFor((m) => m.type === 'PUT_READY');
      clock.advance(1500);
      peer.write(body);
      peer.send({ type: 'PUT_END', id: 1, digest: createHash('sha256').update(body).digest() });
      await peer.waitFor((m) => m.type === 'PUT_OK');
      assert.deepEqual(seen, [{ type: 'PUT', result: 'OK', durationMs: 1500 }]);
    } finally {
      peer.destroy();
      await server.stop();
    }
  });

  it('a listener that throws is reported and never reaches the connection', async () => {
    const failures: unknown[] = [];
    const server = await startServer({ logger: pino({ level: 'silent' }) });
    // The server's own reporter logs; this one (added the same way) records.
    const events = new ServerEvents((error) => failures.push(error));
    events.on('request', () => {
      throw new Error('observer bug');
    });
    events.emit('request', { type: 'STAT', result: 'OK', durationMs: 1 });
    assert.equal(failures.length, 1);
    server.server.events.on('request', () => {
      throw new Error('observer bug');
    });
    try {
      const client = await connect(server.address);
      await client.put(Buffer.from('still works'), 'a.txt');
      assert.equal((await client.stat('a.txt')).size, 11);
      await client.close();
    } finally {
      await server.stop();
    }
  });
});
