import net from 'node:net';
import {
  Decoder,
  encodeMessage,
  PROTOCOL_VERSION,
  type Message,
} from '../../src/protocol/index.js';

/**
 * A hand-driven client socket for protocol tests: sends exact bytes and collects decoded
 * replies, so tests can misbehave in ways the real client never would.
 */
export class RawPeer {
  readonly messages: Message[] = [];
  readonly bodies = new Map<number, Buffer[]>();
  closed = false;
  private readonly decoder: Decoder;
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: net.Socket) {
    this.decoder = new Decoder('client', {
      message: (m) => {
        this.messages.push(m);
        this.wake();
      },
      body: (id, data) => {
        const list = this.bodies.get(id) ?? [];
        list.push(Buffer.from(data));
        this.bodies.set(id, list);
      },
      bodyEnd: () => this.wake(),
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        this.decoder.push(chunk);
      } catch {
        socket.destroy();
      }
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static async connect(port: number, options: { hello?: boolean; version?: number; flags?: number } = {}): Promise<RawPeer> {
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const peer = new RawPeer(socket);
    if (options.hello ?? true) {
      peer.send({ type: 'HELLO', id: 0, version: options.version ?? PROTOCOL_VERSION, clientName: 'raw-peer', flags: options.flags ?? 0 });
      await peer.waitFor((m) => m.type === 'SERVER_HELLO');
    }
    return peer;
  }

  send(message: Message): void {
    this.socket.write(encodeMessage(message));
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Waits for a message matching `predicate` (already received or arriving within `ms`). */
  async waitFor(predicate: (m: Message) => boolean, ms = 3000): Promise<Message> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.messages.find(predicate);
      if (found) return found;
      if (this.closed) throw new Error('connection closed while waiting');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a message');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async waitClosed(ms = 3000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('connection still open');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}
