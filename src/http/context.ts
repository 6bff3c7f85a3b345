import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { StoreBackend } from '../storage/backend.js';
import type { Access } from './access.js';
import type { ConnectionWatch } from './watch.js';

/** What every HTTP handler works with. */
export interface DoorContext {
  store: StoreBackend;
  log: Logger;
  access: Access;
  clock: Clock;
  /** The idle watch of the request's connection. */
  watchOf(req: IncomingMessage): ConnectionWatch | undefined;
}

/** `Expect: 100-continue` requests reach the handlers with this mark: send 100 before reading the body. */
export const EXPECTS_CONTINUE = Symbol('expects 100-continue');

export function expectsContinue(req: IncomingMessage): boolean {
  return (req as IncomingMessage & { [EXPECTS_CONTINUE]?: boolean })[EXPECTS_CONTINUE] === true;
}

/** A request header as one string (a repeated header's values joined with ", "). */
export function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}
