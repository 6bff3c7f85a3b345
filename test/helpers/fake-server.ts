import net from 'node:net';
import { Decoder, encodeMessage, PROTOCOL_VERSION, type Message, type MessageOf } from '../../src/protocol/index.js';

/**
 * A scripted server for client tests: completes the handshake, then hands each request to
 * `onRequest`, which writes whatever bytes the test wants (honest or hostile).
 */
export interface FakeServerOptions {
  /** Fields of the SERVER_HELLO to change (a hostile version, flags, max size…). */
  hello?: Partial<MessageOf<'SERVER_HELLO'>>;
  /** Replaces the handshake: writes whatever the test wants once HELLO arrives. */
  onHello?: (socket: net.Socket) => void;
}

export async function startFakeServer(
  onRequest: (message: Message, socket: net.Socket) => void,
  options: FakeServerOptions = {},
): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const decoder = new Decoder('server', {
      message: (m) => {
        if (m.type === 'HELLO' && options.onHello) {
          options.onHello(socket);
        } else if (m.type === 'HELLO') {
          socket.write(encodeMessage({ type: 'SERVER_HELLO', id: 0, version: PROTOCOL_VERSION, serverName: 'fake', maxFileSize: 2 ** 40, flags: 0, ...options.hello }));
        } else {
          onRequest(m, socket);
        }
      },
      body: () => undefined,
      bodyEnd: () => undefined,
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk);
      } catch {
        socket.destroy();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
