/**
 * The client half of ferry's public API, importable alone (`ferry/client`) so a program
 * that only talks to servers never loads the server, its logger or its storage.
 */
export { BATCH_GET_MAX_FILE, BatchBuilder, connect, FerryClient, GetBatchBuilder } from './client.js';
export type { BatchGetResult, BatchPutFile, BatchPutOptions, BatchPutResult, ConnectOptions, Entry, GetOptions, Progress, PutOptions, TransferResult } from './client.js';
export type { TlsClientOptions } from './connection.js';
export { connectReader, FerryReader, LIST_PAGE } from './reader.js';
export { KnownHosts, defaultKnownHostsPath } from './known-hosts.js';
export { FerryError, ProtocolError, isFerryError, WireErrorCode } from '../errors.js';
export type { ErrorCode, WireErrorName, LocalErrorName } from '../errors.js';
export { nameProblem, printableName } from '../protocol/names.js';
export { blake3Available, blake3LoadProblem, createHasher, preferredAlgorithm } from '../io/digest.js';
export type { DigestAlgorithm, Hasher } from '../io/digest.js';
