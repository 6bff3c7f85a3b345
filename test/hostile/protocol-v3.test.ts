import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, WireErrorCode } from '../../src/index.js';
import { encodeMessage, frame, MessageType, PROTOCOL_VERSION, PutFlag, type Message } from '../../src/protocol/index.js';
import { startFakeServer } from '../helpers/fake-server.js';
import { startServer, type TestServer } from '../helpers/fixtures.js';
import { RawPeer } from '../helpers/raw-peer.js';

/** Protocol 3: PUT's MTIME flag and the version fallback (PROTOCOL.md §11). */

const codeOf = (m: Message | undefined): number | undefined => (m?.type === 'ERROR' ? m.code : undefined);

describe('protocol 3', () => {
  let server: TestServer;
  before(async () => (server = await startServer()));
  after(() => server.stop());

  it('stores the modification time a version-3 PUT carries', async () => {
    const client = await connect(server.address);
    try {
      const mtimeMs = Date.UTC(2001, 1, 3, 4, 5, 6, 789);
      const result = await client.put(Buffer.from('dated'), 'dated.txt', { mtimeMs });
      assert.equal(result.mtime.getTime(), mtimeMs);
      assert.equal((await client.stat('dated.txt')).mtime.getTime(), mtimeMs);
    } finally {
      await client.close();
    }
  });

  it('refuses MTIME on a version-2 connection as an unknown flag, and stays usable', async () => {
    const peer = await RawPeer.connect(server.address.port, { version: 2 });
    peer.send({ type: 'PUT', id: 1, name: 'v2.txt', flags: PutFlag.MTIME, size: 2 });
    peer.write(Buffer.from('hi'));
    peer.send({ type: 'PUT_END', id: 1, digest: Buffer.alloc(32) });
    peer.send({ type: 'STAT', id: 2, name: 'v2.txt' });
    await peer.waitFor((m) => m.id === 2);
    assert.equal(codeOf(peer.messages.find((m) => m.id === 1)), WireErrorCode.UNSUPPORTED);
    assert.equal(codeOf(peer.messages.find((m) => m.id === 2)), WireErrorCode.NOT_FOUND);
    peer.destroy();
  });

  it('closes a version-3 connection whose MTIME PUT lacks the field', async () => {
    const peer = await RawPeer.connect(server.address.port);
    const name = Buffer.from('x.txt');
    const payload = Buffer.concat([Buffer.from([0, name.length]), name, Buffer.from([PutFlag.MTIME]), Buffer.alloc(8)]);
    peer.write(frame(MessageType.PUT, 1, payload));
    await peer.waitClosed();
    assert.equal(codeOf(peer.messages.find((m) => m.type === 'ERROR' && m.id === 0)), WireErrorCode.PROTOCOL);
  });

  it('a client offered VERSION by an older server asks again with version 2', async () => {
    const offered: number[] = [];
    const fake = await startFakeServer(() => undefined, {
      onHello: (socket, hello) => {
        if (hello.type !== 'HELLO') return;
        offered.push(hello.version);
        if (hello.version > 2) {
          socket.write(encodeMessage({ type: 'ERROR', id: 0, code: WireErrorCode.VERSION, message: 'speaks 1 to 2' }));
          socket.end();
        } else {
          socket.write(encodeMessage({ type: 'SERVER_HELLO', id: 0, version: hello.version, serverName: 'old', maxFileSize: 1024, flags: 0 }));
        }
      },
    });
    try {
      const client = await connect({ port: fake.port, timeoutMs: 5000 });
      assert.deepEqual(offered, [PROTOCOL_VERSION, 6, 5, 4, 2]);
      await assert.rejects(client.put(Buffer.from('x'), 'x', { mtimeMs: 0 }), (e: { code?: string }) => e.code === 'UNSUPPORTED');
      client.destroy();
    } finally {
      await fake.close();
    }
  });
});
