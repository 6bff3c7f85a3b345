/**
 * ferry's public API: a verified, streaming file-transfer client and server.
 *
 *   import { connect, createServer } from 'ferry';
 */
export { BATCH_GET_MAX_FILE, BatchBuilder, connect, FerryClient, GetBatchBuilder } from './client/client.js';
export type { BatchGetResult, BatchPutFile, BatchPutOptions, BatchPutResult, ConnectOptions, Entry, GetOptions, Progress, PutOptions, TransferResult } from './client/client.js';
export { FerryServer, DEFAULT_HOST, DEFAULT_PORT, DEFAULT_ROOT } from './server/server.js';
export { createServer } from './create-server.js';
export type { ServerOptions } from './create-server.js';
export type { ListeningAddress, PluginContext, ServerPlugin } from './server/plugin.js';
export type { TlsClientOptions } from './client/connection.js';
export { KnownHosts, defaultKnownHostsPath } from './client/known-hosts.js';
export { TokenSet, AuthThrottle } from './server/auth.js';
export type { Permission, ThrottleOptions } from './server/auth.js';
export { fingerprintOf } from './transport/tls.js';
export type { ServerTlsOptions } from './transport/tls.js';
export { FerryError, ProtocolError, isFerryError, WireErrorCode } from './errors.js';
export type { ErrorCode, WireErrorName, LocalErrorName } from './errors.js';
export { nameProblem, printableName } from './protocol/names.js';
export { blake3Available, blake3LoadProblem, createHasher, preferredAlgorithm } from './io/digest.js';
export type { DigestAlgorithm, Hasher } from './io/digest.js';
export { sendRawFile } from './services/raw-sender.js';
export type { RawSendOptions, RawSendResult } from './services/raw-sender.js';
export { ExchangeServer } from './services/exchange-server.js';
export type { ExchangeServerOptions, StopReason } from './services/exchange-server.js';
export { exchangeIntegers } from './services/exchange-client.js';
export type { ExchangeRequest, ExchangeResult } from './services/exchange-client.js';
export type { Greeting } from './services/exchange-protocol.js';
