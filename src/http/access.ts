import type { IncomingMessage } from 'node:http';
import type { Clock } from '../clock.js';
import { FerryError } from '../errors.js';
import { allows, AuthThrottle, type Permission, type TokenSet } from '../server/auth.js';
import { addressKey } from '../transport/limits.js';

/** Cookie the web page keeps a token in, for reads only (links and downloads cannot send a header). */
export const TOKEN_COOKIE = 'ferry-token';

/**
 * Bearer tokens on the HTTP door: the same tokens file and rules as the protocol (PROTOCOL.md
 * §8). `Authorization: Bearer TOKEN`; read tokens only read. A read may also present the
 * token in the `ferry-token` cookie the web page sets (SameSite=Strict), so plain links work;
 * a change never takes it from a cookie, so another site cannot make a browser change files.
 * Addresses with recent failures wait before every verdict, as AUTH does on the protocol port.
 */
export class Access {
  private readonly throttle: AuthThrottle;

  constructor(
    private readonly tokens: TokenSet | undefined,
    private readonly clock: Clock,
    throttle?: AuthThrottle,
  ) {
    this.throttle = throttle ?? new AuthThrottle();
  }

  get required(): boolean {
    return this.tokens !== undefined;
  }

  /** Resolves when the request may do what `needed` allows; throws AUTH_REQUIRED, AUTH_FAILED or READ_ONLY. */
  async check(req: IncomingMessage, needed: Permission): Promise<void> {
    if (!this.tokens) return;
    const token = bearerToken(req) ?? (needed === 'read' ? cookieToken(req) : undefined);
    if (token === undefined) {
      throw new FerryError('AUTH_REQUIRED', needed === 'write' ? 'a write token is needed: send Authorization: Bearer TOKEN' : 'a token is needed: send Authorization: Bearer TOKEN');
    }
    const address = addressKey(req.socket.remoteAddress);
    const delay = this.throttle.delayFor(address);
    const granted = this.tokens.check(token);
    if (granted === undefined) this.throttle.recordFailure(address);
    if (delay > 0) await new Promise<void>((resolve) => this.clock.setTimer(delay, resolve));
    if (granted === undefined) throw new FerryError('AUTH_FAILED', 'the token was not accepted');
    if (!allows(granted, needed)) throw new FerryError('READ_ONLY', 'this token may only read');
  }
}

function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  // A malformed Authorization header is a failed attempt, never "no token".
  return match ? match[1]! : header;
}

function cookieToken(req: IncomingMessage): string | undefined {
  const cookies = req.headers.cookie;
  if (cookies === undefined) return undefined;
  for (const part of cookies.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === TOKEN_COOKIE) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** Headers a 401 carries (RFC 6750). */
export function challenge(error: FerryError): Record<string, string> {
  if (error.code === 'AUTH_REQUIRED') return { 'WWW-Authenticate': 'Bearer realm="ferry"' };
  if (error.code === 'AUTH_FAILED') return { 'WWW-Authenticate': 'Bearer realm="ferry", error="invalid_token"' };
  return {};
}
