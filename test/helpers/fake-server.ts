import { readdirSync } from 'node:fs';
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
  onHello?: (socket: net.Socket, hello: Message) => void;
  /** Each slice of an upload body (only what the decoder was told to expect, see FakePeer). */
  onBody?: (id: number, data: Buffer, socket: net.Socket) => void;
  /** The end of an upload body. */
  onBodyEnd?: (id: number, socket: net.Socket) => void;
  /** Every accepted socket, before anything is read from it. */
  onConnection?: (socket: net.Socket) => void;
}

/** What a request handler may ask of the fake server's decoder (as the real server does after PUT_READY). */
export interface FakePeer {
  expectBody(id: number, length: number | 'chunked'): void;
  cancelAwait(id: number): void;
}

export interface FakeServer {
  port: number;
  /** Sockets accepted and not yet closed. */
  readonly open: number;
  close: () => Promise<void>;
}

export async function startFakeServer(
  onRequest: (message: Message, socket: net.Socket, peer: FakePeer) => void,
  options: FakeServerOptions = {},
): Promise<FakeServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    options.onConnection?.(socket);
    const decoder: Decoder = new Decoder('server', {
      message: (m) => {
        if (m.type === 'HELLO' && options.onHello) {
          options.onHello(socket, m);
        } else if (m.type === 'HELLO') {
          socket.write(encodeMessage({ type: 'SERVER_HELLO', id: 0, version: PROTOCOL_VERSION, serverName: 'fake', maxFileSize: 2 ** 40, flags: 0, ...options.hello }));
        } else {
          onRequest(m, socket, peer);
        }
      },
      body: (id, data) => options.onBody?.(id, data, socket),
      bodyEnd: (id) => options.onBodyEnd?.(id, socket),
    });
    const peer: FakePeer = {
      expectBody: (id, length) => decoder.expectBody(id, length),
      cancelAwait: (id) => decoder.cancelAwait(id),
    };
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
    get open() {
      return sockets.size;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Open file descriptors of this process (sockets and files alike; Linux /proc). */
export function openDescriptors(): number {
  return readdirSync('/proc/self/fd').length;
}

/** How many of the resources keeping the event loop alive are of `kind` ('MessagePort': a ref'd worker). */
export function activeResources(kind: string): number {
  return process.getActiveResourcesInfo().filter((r) => r === kind).length;
}

/** Lets pending I/O callbacks (closes, file handle releases) run. */
export async function settleIo(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Whether `call` has settled once pending I/O callbacks have run (a deadline test's "not yet"). */
export async function settledYet(call: Promise<unknown>): Promise<boolean> {
  let settled = false;
  call.then(
    () => (settled = true),
    () => (settled = true),
  );
  await settleIo();
  return settled;
}
