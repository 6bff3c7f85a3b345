import net from 'node:net';
import { Deadline, systemClock, type Clock, type Timer } from '../clock.js';
import {
  DEFAULT_EXCHANGE_PORT,
  DEFAULT_SERVER_NAME,
  DEFAULT_SERVER_NUMBER,
  formatErrorLine,
  formatServerLine,
  inRange,
  MAX_LINE_BYTES,
  MAX_NUMBER,
  MIN_NUMBER,
  parseClientLine,
  printable,
  type Greeting,
} from './exchange-protocol.js';
import { LineBuffer, type LineResult } from './line-buffer.js';
import { ConnectionLimiter } from '../transport/limits.js';

export interface ExchangeServerOptions {
  host?: string;
  /** 0 picks a free port. Default 12000. */
  port?: number;
  name?: string;
  number?: bigint;
  /** How long a client may take to send its line (default 10 s; any length, no timer overflow). */
  lineTimeoutMs?: number;
  /** Time source for the line deadline and the closing linger (tests pass a ManualClock). */
  clock?: Clock;
  maxConnections?: number;
  /** Connections at once from one address (default 50). */
  maxPerIp?: number;
  /** Receives the human-readable report, one block of lines per call. */
  print?: (text: string) => void;
}

/** Why the server stopped: a client sent an integer outside 1–100, or close() was called. */
export type StopReason = { kind: 'out-of-range'; value: bigint } | { kind: 'closed' };

const DEFAULT_LINE_TIMEOUT_MS = 10_000;
/** After answering, how long we wait for the client to close before closing ourselves. */
const LINGER_MS = 2_000;

/**
 * The integer exchange server: reads one line per connection, answers one line, closes.
 * A client integer outside 1–100 is answered, then the server stops listening (the service's
 * contract); `stopped` resolves once every connection is closed.
 */
export class ExchangeServer {
  readonly stopped: Promise<StopReason>;
  private readonly netServer: net.Server;
  private readonly greeting: Greeting;
  private readonly options: ExchangeServerOptions;
  private readonly sockets = new Set<net.Socket>();
  private readonly limiter: ConnectionLimiter;
  private readonly clock: Clock;
  private readonly lineTimeoutMs: number;
  private stopReason: StopReason | undefined;
  private resolveStopped!: (reason: StopReason) => void;

  constructor(options: ExchangeServerOptions = {}) {
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.lineTimeoutMs = options.lineTimeoutMs ?? DEFAULT_LINE_TIMEOUT_MS;
    if (!(this.lineTimeoutMs > 0) || !Number.isFinite(this.lineTimeoutMs)) {
      throw new RangeError(`lineTimeoutMs must be a positive number of milliseconds, not ${this.lineTimeoutMs}`);
    }
    this.greeting = { name: options.name ?? DEFAULT_SERVER_NAME, value: options.number ?? DEFAULT_SERVER_NUMBER };
    this.stopped = new Promise((resolve) => (this.resolveStopped = resolve));
    // Half-open: a client that half-closes right after its line must still get the answer.
    this.netServer = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    this.limiter = new ConnectionLimiter({ maxConnections: options.maxConnections ?? 100, maxPerIp: options.maxPerIp });
  }

  get name(): string {
    return this.greeting.name;
  }

  get number(): bigint {
    return this.greeting.value;
  }

  /** Listens; rejects with the system error (EADDRINUSE, …) as is. */
  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.netServer.once('error', reject);
      this.netServer.listen({ host: this.options.host ?? '127.0.0.1', port: this.options.port ?? DEFAULT_EXCHANGE_PORT }, () => {
        this.netServer.off('error', reject);
        const address = this.netServer.address() as net.AddressInfo;
        if (this.stopReason) this.netServer.close(); // close() came while we were opening
        resolve({ host: address.address, port: address.port });
      });
    });
  }

  /** Stops listening; connections still being answered get LINGER_MS to finish. Idempotent. */
  close(): Promise<StopReason> {
    this.stop({ kind: 'closed' });
    return this.stopped;
  }

  private stop(reason: StopReason): void {
    if (this.stopReason) return;
    this.stopReason = reason;
    this.netServer.close(() => this.resolveStopped(reason));
    this.clock.setTimer(LINGER_MS, () => {
      for (const socket of this.sockets) socket.destroy();
    });
  }

  private print(text: string): void {
    (this.options.print ?? ((t: string) => process.stdout.write(t)))(text);
  }

  private accept(socket: net.Socket): void {
    const peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    const admission = this.limiter.admit(socket.remoteAddress);
    if (!admission.ok) {
      socket.on('error', () => undefined);
      socket.resetAndDestroy(); // over a limit: refused before reading a byte
      return;
    }
    socket.once('close', admission.release);
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined); // a reset peer simply goes away
    const line = new LineBuffer(MAX_LINE_BYTES);
    let answered = false;
    let linger: Timer | undefined;
    const answer = (result: LineResult): void => {
      if (answered) return;
      answered = true;
      deadline.stop();
      socket.removeAllListeners('data');
      socket.resume(); // drop whatever else arrives, so the client never blocks on us
      this.answer(socket, peer, result);
      // Close after the client does, or LINGER_MS after answering if it never does (bytes
      // it keeps sending do not extend this).
      linger = this.clock.setTimer(LINGER_MS, () => socket.destroy());
    };
    // Absolute: started once and never touched, so trickling bytes do not extend it.
    const deadline = new Deadline(this.clock, this.lineTimeoutMs, () =>
      answer({ kind: 'malformed', reason: `no line within ${this.lineTimeoutMs / 1000} s` }),
    );
    deadline.start();
    socket.on('data', (chunk: Buffer) => {
      const result = line.push(chunk);
      if (result) answer(result);
    });
    socket.on('end', () => {
      if (!answered) answer(line.end());
      socket.end();
    });
    socket.on('close', () => {
      deadline.stop();
      linger?.cancel();
    });
  }

  private answer(socket: net.Socket, peer: string, result: LineResult): void {
    const parsed = result.kind === 'line' ? parseClientLine(result.text) : { ok: false as const, reason: result.reason };
    if (!parsed.ok) {
      this.print(`connection from ${peer}\nmalformed line: ${parsed.reason} (answered ERROR, closed)\n`);
      socket.end(formatErrorLine(parsed.reason));
      return;
    }
    const client = parsed.value;
    const server = this.greeting;
    this.print(
      `connection from ${peer}\n` +
        `client name: ${printable(client.name)}\n` +
        `client integer: ${client.value}\n` +
        `server name: ${printable(server.name)}\n` +
        `server integer: ${server.value}\n` +
        `sum: ${client.value + server.value}\n`,
    );
    socket.end(formatServerLine(server));
    if (!inRange(client.value)) {
      this.print(`client integer ${client.value} is outside ${MIN_NUMBER}-${MAX_NUMBER}: stopping\n`);
      this.stop({ kind: 'out-of-range', value: client.value });
    }
  }
}
