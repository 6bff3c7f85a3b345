import net from 'node:net';
import { FerryError, ProtocolError, wireErrorName } from '../errors.js';
import { Decoder, encodeMessage, PROTOCOL_VERSION, type Message, type MessageOf } from '../protocol/index.js';
import { Outbox } from '../transport/outbox.js';

export interface ConnectOptions {
  host?: string;
  port?: number;
  /** Name sent in HELLO (shown in server logs). */
  clientName?: string;
  /** Connect and handshake deadline, and the longest silence tolerated mid-request (ms). */
  timeoutMs?: number;
}

/** Receives what the server sends for one request id. */
export interface RequestHandler {
  message(message: Message): void;
  body?(data: Buffer): void;
  bodyEnd?(): void;
  fail(error: FerryError): void;
}

/**
 * A handshaken connection to a ferry server: routes replies to requests by id, and turns
 * any transport failure into one FerryError that every pending and later request receives.
 */
export class Connection {
  readonly outbox: Outbox;
  private readonly handlers = new Map<number, RequestHandler>();
  private readonly decoder: Decoder;
  private nextId = 1;
  private failure: FerryError | undefined;
  private paused = false;
  serverName = '';
  maxFileSize = 0;

  private constructor(readonly socket: net.Socket) {
    this.outbox = new Outbox(socket);
    this.decoder = new Decoder('client', {
      message: (message) => this.route(message),
      body: (id, data) => this.handlers.get(id)?.body?.(data),
      bodyEnd: (id) => this.handlers.get(id)?.bodyEnd?.(),
    });
  }

  static async open(options: ConnectOptions = {}): Promise<Connection> {
    const host = options.host ?? '127.0.0.1';
    const port = options.port ?? 4455;
    const timeoutMs = options.timeoutMs ?? 30_000;
    const where = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    const socket = net.connect({ host, port });
    socket.setNoDelay(true);
    const connection = new Connection(socket);
    const handshake = new Promise<MessageOf<'SERVER_HELLO'>>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new FerryError('TIMEOUT', `no answer from ${where} within ${timeoutMs / 1000} s: is a ferry server running there?`));
        socket.destroy();
      }, timeoutMs);
      connection.handlers.set(0, {
        message: (message) => {
          clearTimeout(timer);
          if (message.type === 'SERVER_HELLO') resolve(message);
          else reject(new ProtocolError(`expected SERVER_HELLO, got ${message.type}`));
        },
        fail: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      socket.once('connect', () => {
        socket.setTimeout(timeoutMs, () => connection.onStall(timeoutMs));
      });
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        connection.decoder.push(chunk);
      } catch (error) {
        connection.destroy(error instanceof FerryError ? error : new ProtocolError(String(error)));
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => connection.destroy(transportError(error, where)));
    socket.on('close', () =>
      connection.destroy(new FerryError('CLOSED', `the server at ${where} closed the connection`, { fatal: true })),
    );
    socket.write(
      encodeMessage({
        type: 'HELLO',
        id: 0,
        version: PROTOCOL_VERSION,
        clientName: options.clientName ?? 'ferry-client',
        flags: 0,
      }),
    );
    const hello = await handshake;
    connection.handlers.delete(0);
    connection.handlers.set(0, { message: (m) => connection.onConnectionMessage(m), fail: () => undefined });
    connection.serverName = hello.serverName;
    connection.maxFileSize = hello.maxFileSize;
    return connection;
  }

  get error(): FerryError | undefined {
    return this.failure;
  }

  /** Allocates a request id and registers its handler; throws the connection's failure if any. */
  register(handler: RequestHandler): number {
    if (this.failure) throw this.failure;
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    this.handlers.set(id, handler);
    return id;
  }

  release(id: number): void {
    this.handlers.delete(id);
  }

  send(message: Message): void {
    if (this.failure) throw this.failure;
    this.outbox.frame(encodeMessage(message));
  }

  /** Backpressure from a local sink: stop reading the socket until `resume`. */
  pause(): void {
    this.paused = true;
    this.socket.pause();
  }

  resume(): void {
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private route(message: Message): void {
    const handler = this.handlers.get(message.id);
    if (handler === undefined) {
      throw new ProtocolError(`reply for unknown request id ${message.id}`);
    }
    handler.message(message);
  }

  private onConnectionMessage(message: Message): void {
    if (message.type === 'ERROR') {
      const code = wireErrorName(message.code) ?? 'PROTOCOL';
      this.destroy(new FerryError(code, `server closed the connection: ${message.message}`, { fatal: true }));
    } else {
      throw new ProtocolError(`unexpected ${message.type} with request id 0`);
    }
  }

  private onStall(timeoutMs: number): void {
    if (this.handlers.size > 1 || (this.handlers.size === 1 && !this.handlers.has(0))) {
      this.destroy(new FerryError('TIMEOUT', `the server sent nothing for ${timeoutMs / 1000} s`, { fatal: true }));
    }
  }

  /** Fails every pending request with `error` and closes the socket; idempotent. */
  destroy(error: FerryError): void {
    if (this.failure) return;
    this.failure = error.fatal ? error : new FerryError(error.code, error.message, { fatal: true, cause: error });
    this.outbox.close();
    this.socket.destroy();
    const handlers = [...this.handlers.values()];
    this.handlers.clear();
    for (const handler of handlers) handler.fail(this.failure);
  }

  /** Half-closes after everything queued is written, then waits for the server to close. */
  async close(): Promise<void> {
    if (this.failure || this.socket.destroyed) return;
    await this.outbox.enqueue(async () => undefined).catch(() => undefined);
    await new Promise<void>((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.end();
      setTimeout(() => {
        this.socket.destroy();
        resolve();
      }, 2000).unref();
    });
  }
}

function transportError(error: NodeJS.ErrnoException, where: string): FerryError {
  switch (error.code) {
    case 'ECONNREFUSED':
      return new FerryError('CONNECTION', `connection refused by ${where}: is the ferry server running?`, { cause: error, fatal: true });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new FerryError('CONNECTION', `cannot resolve the host in ${where}`, { cause: error, fatal: true });
    case 'ECONNRESET':
    case 'EPIPE':
      return new FerryError('CLOSED', `connection to ${where} was reset`, { cause: error, fatal: true });
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new FerryError('CONNECTION', `cannot reach ${where} (${error.code})`, { cause: error, fatal: true });
    default:
      return new FerryError('CONNECTION', `connection to ${where} failed: ${error.message}`, { cause: error, fatal: true });
  }
}

export function remoteError(message: MessageOf<'ERROR'>): FerryError {
  const code = wireErrorName(message.code);
  if (code === undefined) return new FerryError('INTERNAL', `server error ${message.code}: ${message.message}`);
  return new FerryError(code, message.message);
}
