import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, WireErrorCode } from '../../src/index.js';
import { encodeMessage, frame, MessageType, PutFlag, type Message } from '../../src/protocol/index.js';
import { BAD_NAMES } from '../helpers/bad-names.js';
import { eventually, randomData, sha256, startServer, tempDir, temporaries, visibleTree, type TestServer } from '../helpers/fixtures.js';
import { RawPeer } from '../helpers/raw-peer.js';

const errorCode = (m: Message): number | undefined => (m.type === 'ERROR' ? m.code : undefined);

describe('misbehaving clients', () => {
  let server: TestServer;
  let sentinelDir: string;

  before(async () => {
    server = await startServer();
    sentinelDir = await tempDir();
    await fs.writeFile(path.join(sentinelDir, 'sentinel'), 'keep');
  });
  after(async () => {
    await server.stop();
    await fs.rm(sentinelDir, { recursive: true, force: true });
  });

  /** After every abuse: a normal client still works and nothing leaked. */
  async function assertHealthy(): Promise<void> {
    const client = await connect(server.address);
    const data = randomData(1234);
    const name = `health/${Math.random().toString(36).slice(2)}.bin`;
    assert.equal((await client.put(data, name)).sha256, sha256(data));
    await client.remove(name);
    await client.close();
    assert.equal(await fs.readFile(path.join(sentinelDir, 'sentinel'), 'utf8'), 'keep');
    await eventually(async () => (await temporaries(server.root)).length === 0, 3000, 'temporaries to be removed');
  }

  it('refuses every bad name with BAD_NAME and creates nothing', async () => {
    const peer = await RawPeer.connect(server.address.port);
    const before = await visibleTree(server.root);
    let id = 1;
    // Names that cannot even be encoded as UTF-8 (lone surrogates) are tested as raw bytes below.
    for (const [name] of BAD_NAMES.filter(([n]) => Buffer.from(n, 'utf8').toString('utf8') === n)) {
      for (const message of [
        { type: 'PUT', id, name, flags: 0, size: 1 } as const,
        { type: 'GET', id: id + 1, name, offset: 0 } as const,
        { type: 'DELETE', id: id + 2, name, flags: 0 } as const,
        { type: 'STAT', id: id + 3, name } as const,
      ]) {
        const isPut = message.type === 'PUT';
        peer.write(encodeMessage(message));
        if (isPut) {
          peer.write(Buffer.from('x'));
          peer.send({ type: 'PUT_END', id, sha256: Buffer.alloc(32) });
        }
        const reply = await peer.waitFor((m) => m.id === message.id);
        assert.equal(errorCode(reply), WireErrorCode.BAD_NAME, `${message.type} ${JSON.stringify(name)}`);
      }
      id += 4;
    }
    assert.deepEqual(await visibleTree(server.root), before);
    peer.destroy();
    await assertHealthy();
  });

  it('closes the connection on a name that is not valid UTF-8', async () => {
    const peer = await RawPeer.connect(server.address.port);
    peer.write(frame(MessageType.STAT, 1, Buffer.from('0003c328ff', 'hex')));
    await peer.waitClosed();
    assert.equal(errorCode(peer.messages.at(-1)!), WireErrorCode.PROTOCOL);
    await assertHealthy();
  });

  it('publishes nothing when the client disconnects mid-upload', async () => {
    const peer = await RawPeer.connect(server.address.port);
    peer.send({ type: 'PUT', id: 1, name: 'cut.bin', flags: 0, size: 1_000_000 });
    peer.write(randomData(300_000));
    await eventually(async () => (await temporaries(server.root)).length === 1, 3000, 'the upload to start');
    peer.destroy();
    await eventually(async () => (await temporaries(server.root)).length === 0, 3000, 'the partial to be discarded');
    assert.ok(!(await visibleTree(server.root)).includes('cut.bin'));
    await assertHealthy();
  });

  it('stores nothing when the declared size is longer than the bytes sent', async () => {
    const peer = await RawPeer.connect(server.address.port);
    const data = Buffer.from('only ten b');
    peer.send({ type: 'PUT', id: 1, name: 'long-claim.bin', flags: 0, size: 20 });
    peer.write(data);
    peer.send({ type: 'PUT_END', id: 1, sha256: Buffer.from(sha256(data), 'hex') }); // swallowed as body
    peer.socket.end();
    await peer.waitClosed();
    await eventually(async () => (await temporaries(server.root)).length === 0);
    assert.ok(!(await visibleTree(server.root)).includes('long-claim.bin'));
    await assertHealthy();
  });

  it('stores nothing and closes when the declared size is shorter than the bytes sent', async () => {
    const peer = await RawPeer.connect(server.address.port);
    const data = randomData(100);
    peer.send({ type: 'PUT', id: 1, name: 'short-claim.bin', flags: 0, size: 50 });
    peer.write(data); // 50 extra bytes where PUT_END should be
    peer.send({ type: 'PUT_END', id: 1, sha256: Buffer.from(sha256(data), 'hex') });
    await peer.waitClosed();
    assert.ok(peer.messages.some((m) => errorCode(m) === WireErrorCode.PROTOCOL || errorCode(m) === WireErrorCode.INTEGRITY));
    await eventually(async () => (await temporaries(server.root)).length === 0);
    assert.ok(!(await visibleTree(server.root)).includes('short-claim.bin'));
    await assertHealthy();
  });

  it('refuses a body whose sha256 does not match, keeping the connection', async () => {
    const peer = await RawPeer.connect(server.address.port);
    peer.send({ type: 'PUT', id: 1, name: 'corrupt.bin', flags: 0, size: 5 });
    peer.write(Buffer.from('hello'));
    peer.send({ type: 'PUT_END', id: 1, sha256: Buffer.alloc(32, 1) });
    assert.equal(errorCode(await peer.waitFor((m) => m.id === 1)), WireErrorCode.INTEGRITY);
    peer.send({ type: 'STAT', id: 2, name: 'corrupt.bin' });
    assert.equal(errorCode(await peer.waitFor((m) => m.id === 2)), WireErrorCode.NOT_FOUND);
    peer.destroy();
    await assertHealthy();
  });

  it('closes a connection that sends an oversize frame, while another client keeps working', async () => {
    const other = await connect(server.address);
    const peer = await RawPeer.connect(server.address.port);
    const header = Buffer.alloc(9);
    header.writeUInt32BE(64 * 1024 + 1, 0);
    header.writeUInt8(MessageType.STAT, 4);
    peer.write(header);
    await peer.waitClosed();
    assert.equal(errorCode(peer.messages.at(-1)!), WireErrorCode.PROTOCOL);
    const data = randomData(70_000);
    assert.equal((await other.put(data, 'still-works.bin')).sha256, sha256(data));
    await other.close();
  });

  for (const [label, bytes] of [
    ['garbage instead of HELLO', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
    ['a TLS ClientHello', Buffer.from('16030100a5010000a10303', 'hex')],
    ['an unknown message type', frame(0x42, 1, Buffer.alloc(0))],
    ['a length field of 2^32-1', Buffer.from('ffffffff1200000001', 'hex')],
  ] as const) {
    it(`closes on ${label}`, async () => {
      const peer = await RawPeer.connect(server.address.port, { hello: label !== 'an unknown message type' ? false : true });
      peer.write(bytes);
      await peer.waitClosed();
      await assertHealthy();
    });
  }

  it('requires HELLO first and refuses another protocol version', async () => {
    const early = await RawPeer.connect(server.address.port, { hello: false });
    early.send({ type: 'STAT', id: 1, name: 'x' });
    await early.waitClosed();
    assert.equal(errorCode(early.messages[0]!), WireErrorCode.PROTOCOL);

    const future = await RawPeer.connect(server.address.port, { hello: false });
    future.send({ type: 'HELLO', id: 0, version: 99, clientName: 'future', flags: 0 });
    await future.waitClosed();
    assert.equal(errorCode(future.messages[0]!), WireErrorCode.VERSION);
  });

  it('closes a connection that stops halfway through a frame once the handshake deadline passes', async () => {
    const quick = await startServer({ handshakeTimeoutMs: 300 });
    const peer = await RawPeer.connect(quick.address.port, { hello: false });
    peer.write(encodeMessage({ type: 'HELLO', id: 0, version: 1, clientName: 'slow', flags: 0 }).subarray(0, 5));
    await peer.waitClosed(3000);
    await quick.stop();
  });

  it('answers a refused AWAIT_READY put without expecting its body', async () => {
    const peer = await RawPeer.connect(server.address.port);
    peer.send({ type: 'PUT', id: 1, name: '../bad', flags: PutFlag.AWAIT_READY, size: 10_000_000 });
    assert.equal(errorCode(await peer.waitFor((m) => m.id === 1)), WireErrorCode.BAD_NAME);
    peer.send({ type: 'STAT', id: 2, name: 'nothing-here' });
    assert.equal(errorCode(await peer.waitFor((m) => m.id === 2)), WireErrorCode.NOT_FOUND);
    peer.destroy();
  });
});
