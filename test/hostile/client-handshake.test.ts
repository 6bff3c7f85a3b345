import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { connect, WireErrorCode, type FerryError } from '../../src/index.js';
import { encodeMessage, ServerFlag } from '../../src/protocol/index.js';
import { openDescriptors, settleIo, startFakeServer } from '../helpers/fake-server.js';
import { eventually } from '../helpers/fixtures.js';

/**
 * Issue #10: a handshake that fails closes the client's socket, whoever is to blame. Each
 * server here keeps its end open after refusing, so only the client can close it: the server
 * must see the close, and the client must hold no descriptor afterwards.
 */

/** A TCP server that writes `answer` on connect or on the first bytes, and never closes. */
async function rawServer(answer: (first: Buffer) => Buffer, when: 'connect' | 'data'): Promise<{ port: number; readonly open: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    if (when === 'connect') socket.write(answer(Buffer.alloc(0)));
    else socket.once('data', (first: Buffer) => socket.write(answer(first)));
    socket.resume(); // keeps reading, so the client's FIN is seen
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get open() {
      return sockets.size;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

async function assertClosedByClient(peer: { readonly open: number }, descriptors: number): Promise<void> {
  await eventually(() => peer.open === 0, 3000, 'the server to see the client close');
  await eventually(async () => (await settleIo(), openDescriptors() <= descriptors), 3000, 'the client to release its socket');
}

describe('a failed handshake closes the socket', () => {
  for (const [code, name] of [
    [WireErrorCode.VERSION, 'VERSION'],
    [WireErrorCode.BUSY, 'BUSY'],
    [WireErrorCode.TIMEOUT, 'TIMEOUT'],
  ] as const) {
    it(`an ERROR ${name} answering HELLO`, async () => {
      const fake = await startFakeServer(() => undefined, {
        onHello: (socket) => socket.write(encodeMessage({ type: 'ERROR', id: 0, code, message: 'refused' })),
      });
      await settleIo();
      const descriptors = openDescriptors();
      await assert.rejects(connect({ host: '127.0.0.1', port: fake.port, timeoutMs: 10_000 }), (e: FerryError) => e.code === name);
      await assertClosedByClient(fake, descriptors);
      await fake.close();
    });
  }

  it('a wrong token (AUTH_FAILED), and no token for a server that needs one (AUTH_REQUIRED)', async () => {
    const fake = await startFakeServer(
      (m, socket) => {
        if (m.type === 'AUTH') socket.write(encodeMessage({ type: 'ERROR', id: m.id, code: WireErrorCode.AUTH_FAILED, message: 'no' }));
      },
      { hello: { flags: ServerFlag.AUTH_REQUIRED } },
    );
    await settleIo();
    const descriptors = openDescriptors();
    await assert.rejects(connect({ host: '127.0.0.1', port: fake.port, token: 'wrong' }), (e: FerryError) => e.code === 'AUTH_FAILED');
    await assertClosedByClient(fake, descriptors);
    await assert.rejects(connect({ host: '127.0.0.1', port: fake.port }), (e: FerryError) => e.code === 'AUTH_REQUIRED');
    await assertClosedByClient(fake, descriptors);
    await fake.close();
  });

  for (const [what, greeting] of [
    ['an HTTP server', 'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'],
    ['an SSH server', 'SSH-2.0-OpenSSH_9.6\r\n'],
  ] as const) {
    it(`${what} (not ferry)`, async () => {
      const server = await rawServer(() => Buffer.from(greeting), 'connect');
      await settleIo();
      const descriptors = openDescriptors();
      await assert.rejects(connect({ host: '127.0.0.1', port: server.port, timeoutMs: 10_000 }), (e: FerryError) => e.code === 'PROTOCOL' && !e.message.includes('\n'));
      await assertClosedByClient(server, descriptors);
      await server.close();
    });
  }

  it('a TLS client on a plaintext port whose server answers in plain text and stays open', async () => {
    const server = await rawServer(() => encodeMessage({ type: 'ERROR', id: 0, code: WireErrorCode.PROTOCOL, message: 'frame too large' }), 'data');
    await settleIo();
    const descriptors = openDescriptors();
    await assert.rejects(
      connect({ host: '127.0.0.1', port: server.port, timeoutMs: 10_000, tls: { knownHosts: false } }),
      (e: FerryError) => e.code === 'CONNECTION' && /does not speak TLS/.test(e.message),
    );
    await assertClosedByClient(server, descriptors);
    await server.close();
  });

  it('a plaintext client on a TLS port whose server answers with a TLS alert and stays open', async () => {
    const server = await rawServer(() => Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]), 'data');
    await settleIo();
    const descriptors = openDescriptors();
    await assert.rejects(connect({ host: '127.0.0.1', port: server.port, timeoutMs: 10_000 }), (e: FerryError) => e.code === 'CONNECTION' && /--tls/.test(e.message));
    await assertClosedByClient(server, descriptors);
    await server.close();
  });
});
