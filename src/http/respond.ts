import type { IncomingMessage, ServerResponse } from 'node:http';
import { FerryError, type ErrorCode } from '../errors.js';

/** HTTP status for each ferry error code (README "Web" lists them). */
const STATUS: Record<ErrorCode, number> = {
  PROTOCOL: 400,
  VERSION: 400,
  BAD_NAME: 400,
  NOT_FOUND: 404,
  EXISTS: 409,
  TOO_LARGE: 413,
  INTEGRITY: 422,
  NO_SPACE: 507,
  QUOTA: 507,
  AUTH_REQUIRED: 401,
  AUTH_FAILED: 401,
  READ_ONLY: 403,
  BUSY: 503,
  CONFLICT: 409,
  INTERNAL: 500,
  UNSUPPORTED: 405,
  TIMEOUT: 408,
  CONNECTION: 500,
  CLOSED: 503,
  LOCAL_IO: 500,
};

export function statusOf(error: FerryError): number {
  return (error as FerryError & { status?: number }).status ?? STATUS[error.code];
}

/** The error, answered with `status` instead of its code's usual one (tus's 409, 412, 415, 423). */
export function withStatus(error: FerryError, status: number): FerryError {
  return Object.assign(error, { status });
}

/** Whether the client prefers JSON (`Accept: application/json` before any HTML). */
export function wantsJson(req: IncomingMessage): boolean {
  const accept = req.headers.accept ?? '';
  const json = accept.indexOf('application/json');
  if (json < 0) return false;
  const html = accept.indexOf('text/html');
  return html < 0 || json < html;
}

/**
 * Answers with an error: the status for its code, a `Ferry-Error: CODE` header, and one line
 * (or `{"error": {code, message}}` for JSON clients). Unexpected errors are INTERNAL, with
 * details only in the log. `close` ends the connection after the answer (a body we will not read).
 */
export function sendError(req: IncomingMessage, res: ServerResponse, error: FerryError, options: { close?: boolean; headers?: Record<string, string> } = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const status = statusOf(error);
  const json = wantsJson(req);
  const body = json ? `${JSON.stringify({ error: { code: error.code, message: error.message } })}\n` : `${error.message}\n`;
  const headers: Record<string, string | number> = {
    'Content-Type': json ? 'application/json' : 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Ferry-Error': error.code,
    'Cache-Control': 'no-store',
    ...options.headers,
  };
  if (options.close) headers.Connection = 'close';
  res.writeHead(status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** A small JSON answer. */
export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = `${JSON.stringify(value)}\n`;
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', ...headers });
  res.end(body);
}

/** The error to answer for anything thrown by a handler. */
export function asFerryError(error: unknown): FerryError {
  if (error instanceof FerryError) return error;
  return new FerryError('INTERNAL', 'internal server error (see the server log)', { cause: error });
}
