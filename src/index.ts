/**
 * ferry's public API: a verified, streaming file-transfer client and server.
 *
 *   import { connect, createServer } from 'ferry';
 */
export { connect, FerryClient } from './client/client.js';
export type { ConnectOptions, Entry, GetOptions, Progress, PutOptions, TransferResult } from './client/client.js';
export { createServer, FerryServer, DEFAULT_HOST, DEFAULT_PORT, DEFAULT_ROOT } from './server/server.js';
export type { ListeningAddress, ServerOptions } from './server/server.js';
export { FerryError, ProtocolError, isFerryError, WireErrorCode } from './errors.js';
export type { ErrorCode, WireErrorName, LocalErrorName } from './errors.js';
export { nameProblem, printableName } from './protocol/names.js';
