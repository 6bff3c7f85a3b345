import { UsageError } from './exit.js';

export interface ServerAddress {
  host: string;
  port: number;
}

export const DEFAULT_SERVER = '127.0.0.1:4455';

/** "HOST:PORT", "[v6]:PORT", "HOST" (default port) or ":PORT" (default host). */
export function parseServerAddress(text: string, defaultPort = 4455): ServerAddress {
  const value = text.trim();
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(value);
  if (bracketed) {
    return { host: bracketed[1]!, port: bracketed[2] === undefined ? defaultPort : parseServerPort(bracketed[2], text) };
  }
  const colon = value.lastIndexOf(':');
  if (colon === -1) {
    if (value === '') throw new UsageError('empty server address: use HOST:PORT');
    return { host: value, port: defaultPort };
  }
  if (value.indexOf(':') !== colon) throw new UsageError(`invalid server address "${text}": write IPv6 as [ADDR]:PORT`);
  const host = value.slice(0, colon) || '127.0.0.1';
  return { host, port: parseServerPort(value.slice(colon + 1), text) };
}

function parseServerPort(port: string, whole: string): number {
  if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
    throw new UsageError(`invalid server address "${whole}": the port must be an integer from 1 to 65535`);
  }
  return Number(port);
}

/** The server to talk to: --server, else FERRY_SERVER, else the default. */
export function resolveServer(option: string | undefined, defaultPort = 4455): ServerAddress {
  return parseServerAddress(option ?? process.env.FERRY_SERVER ?? DEFAULT_SERVER, defaultPort);
}
