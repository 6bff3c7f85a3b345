/**
 * One table of error codes shared by the wire protocol, the server, the client and the CLI.
 * Wire codes are stable u16 values (PROTOCOL.md lists them); the local-only codes never
 * travel on the wire. Users match on `code`, never on the message text.
 */
export const WireErrorCode = {
  PROTOCOL: 1,
  VERSION: 2,
  BAD_NAME: 3,
  NOT_FOUND: 4,
  EXISTS: 5,
  TOO_LARGE: 6,
  INTEGRITY: 7,
  NO_SPACE: 8,
  QUOTA: 9,
  AUTH_REQUIRED: 10,
  AUTH_FAILED: 11,
  READ_ONLY: 12,
  BUSY: 13,
  CONFLICT: 14,
  INTERNAL: 15,
  UNSUPPORTED: 16,
  TIMEOUT: 17,
} as const;

export type WireErrorName = keyof typeof WireErrorCode;

/** Errors that only arise on the local side (never sent as an ERROR frame). */
export type LocalErrorName = 'CONNECTION' | 'CLOSED' | 'LOCAL_IO';

export type ErrorCode = WireErrorName | LocalErrorName;

const wireNameByNumber = new Map<number, WireErrorName>(
  Object.entries(WireErrorCode).map(([name, value]) => [value, name as WireErrorName]),
);

export function wireErrorName(code: number): WireErrorName | undefined {
  return wireNameByNumber.get(code);
}

export class FerryError extends Error {
  override name = 'FerryError';
  readonly code: ErrorCode;
  /** True when the error means the connection can no longer be used. */
  readonly fatal: boolean;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; fatal?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.fatal = options.fatal ?? false;
  }
}

/** A violation of the wire protocol by the peer; always fatal to the connection. */
export class ProtocolError extends FerryError {
  override name = 'ProtocolError';
  constructor(message: string) {
    super('PROTOCOL', message, { fatal: true });
  }
}

export function isFerryError(error: unknown): error is FerryError {
  return error instanceof FerryError;
}
