import net from 'node:net';
import { FerryError } from '../errors.js';
import { formatClientLine, MAX_LINE_BYTES, parseServerLine, type Greeting } from './exchange-protocol.js';
import { LineBuffer, type LineResult } from './line-buffer.js';

export interface ExchangeRequest {
  host: string;
  port: number;
  /** What we send: our name and integer. */
  client: Greeting;
  /** Deadline for connecting, and for the answer once connected. Default 10 s. */
  timeoutMs?: number;
}

export interface ExchangeResult {
  client: Greeting;
  server: Greeting;
  sum: bigint;
}

/** Sends one "Client of …" line and reads the server's one-line answer. */
export async function exchangeIntegers(request: ExchangeRequest): Promise<ExchangeResult> {
  const timeoutMs = request.timeoutMs ?? 10_000;
  const where = request.host.includes(':') ? `[${request.host}]:${request.port}` : `${request.host}:${request.port}`;
  const line = await new Promise<LineResult>((resolve, reject) => {
    const socket = net.connect({ host: request.host, port: request.port });
    const buffer = new LineBuffer(MAX_LINE_BYTES);
    let settled = false;
    const settle = (outcome: LineResult | Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.end();
      socket.resume();
      socket.setTimeout(1000, () => socket.destroy());
      if (outcome instanceof Error) {
        socket.destroy();
        reject(outcome);
      } else {
        resolve(outcome);
      }
    };
    let connected = false;
    const timer = setTimeout(
      () =>
        settle(
          connected
            ? new FerryError('TIMEOUT', `no answer from ${where} within ${timeoutMs / 1000} s`)
            : new FerryError('TIMEOUT', `no connection to ${where} within ${timeoutMs / 1000} s`),
        ),
      timeoutMs,
    );
    socket.once('connect', () => {
      connected = true;
      socket.write(formatClientLine(request.client));
    });
    socket.on('data', (chunk: Buffer) => {
      const result = buffer.push(chunk);
      if (result) settle(result);
    });
    socket.on('end', () => settle(buffer.end()));
    socket.on('error', (error: NodeJS.ErrnoException) => settle(socketError(error, where)));
  });
  if (line.kind === 'malformed') throw new FerryError('PROTOCOL', `unexpected answer from ${where}: ${line.reason}`);
  const parsed = parseServerLine(line.text);
  if (!parsed.ok) throw new FerryError('PROTOCOL', `unexpected answer from ${where}: ${parsed.reason}`);
  if (parsed.value.kind === 'error') throw new FerryError('PROTOCOL', `${where} answered ERROR ${parsed.value.reason}`);
  const server = parsed.value.greeting;
  return { client: request.client, server, sum: request.client.value + server.value };
}

function socketError(error: NodeJS.ErrnoException, where: string): FerryError {
  switch (error.code) {
    case 'ECONNREFUSED':
      return new FerryError('CONNECTION', `connection refused by ${where}: is the exchange server running?`, { cause: error });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new FerryError('CONNECTION', `cannot resolve the host in ${where}`, { cause: error });
    case 'ECONNRESET':
    case 'EPIPE':
      return new FerryError('CLOSED', `connection to ${where} was reset`, { cause: error });
    default:
      return new FerryError('CONNECTION', `connection to ${where} failed: ${error.code ?? error.message}`, { cause: error });
  }
}
