import { createHash } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { FerryError, ProtocolError } from '../errors.js';
import {
  chunkHeader,
  encodeMessage,
  ListFlag,
  MAX_CHUNK_SIZE,
  nameProblem,
  printableName,
  PutFlag,
  type Message,
  type WireEntry,
} from '../protocol/index.js';
import { FileSink } from '../transport/file-sink.js';
import { sendFileRange } from '../transport/file-body.js';
import { waitForDrain } from '../transport/outbox.js';
import { Connection, remoteError, type ConnectOptions } from './connection.js';

export type { ConnectOptions } from './connection.js';

/** A stored file as the client sees it. */
export interface Entry {
  name: string;
  kind: 'file' | 'folder';
  size: number;
  mtime: Date;
  /** Lowercase hex; empty for folders. */
  sha256: string;
}

export interface Progress {
  /** Bytes moved so far in this transfer. */
  bytes: number;
  /** Total bytes, when known. */
  total: number | undefined;
}

export interface PutOptions {
  overwrite?: boolean;
  /** On a clash the server stores "name (1).ext" instead of refusing with EXISTS. */
  rename?: boolean;
  /** Size of a stream source, if known (otherwise the body is sent chunked). */
  size?: number;
  onProgress?: (progress: Progress) => void;
}

export interface GetOptions {
  onProgress?: (progress: Progress) => void;
}

export interface TransferResult {
  /** The name the file is stored under (a put with `rename` may differ from the one asked). */
  name: string;
  size: number;
  sha256: string;
  mtime: Date;
}

/** Above this size a put waits for the server's go-ahead before sending the body. */
const AWAIT_READY_THRESHOLD = 1024 * 1024;
const STREAM_CHUNK = 256 * 1024;

/** Connects to a ferry server and completes the handshake. */
export async function connect(options: ConnectOptions = {}): Promise<FerryClient> {
  return new FerryClient(await Connection.open(options));
}

/**
 * Client for one ferry connection. Calls may be issued concurrently: requests are pipelined
 * on the connection, bodies are sent one after another. A refusal (NOT_FOUND, EXISTS, …)
 * rejects that call only; a transport failure rejects every pending and later call.
 */
export class FerryClient {
  constructor(private readonly connection: Connection) {}

  get serverName(): string {
    return this.connection.serverName;
  }

  /** Largest file the server accepts, in bytes. */
  get maxFileSize(): number {
    return this.connection.maxFileSize;
  }

  /** Files under `prefix` ('' for all). `recursive: false` lists one folder, with subfolders. */
  list(prefix = '', options: { recursive?: boolean } = {}): Promise<Entry[]> {
    const recursive = options.recursive ?? true;
    const entries: Entry[] = [];
    return this.request((id) => ({ type: 'LIST', id, prefix: prefix.replace(/\/+$/, ''), flags: recursive ? ListFlag.RECURSIVE : 0 }), (message, done) => {
      if (message.type !== 'ENTRIES') return false;
      for (const entry of message.entries) entries.push(toEntry(entry));
      if (!message.more) done(entries);
      return true;
    });
  }

  stat(name: string): Promise<Entry> {
    return this.request((id) => ({ type: 'STAT', id, name: checkedName(name) }), (message, done) => {
      if (message.type !== 'ENTRY') return false;
      done(toEntry(message.entry));
      return true;
    });
  }

  remove(name: string): Promise<void> {
    return this.request((id) => ({ type: 'DELETE', id, name: checkedName(name), flags: 0 }), (message, done) => {
      if (message.type !== 'OK') return false;
      done(undefined);
      return true;
    });
  }

  /**
   * Uploads a local file (path), a Buffer, or a stream as `name`. The server hashes what it
   * receives and must agree with the sha256 computed here, or the upload is refused whole.
   */
  async put(source: string | Buffer | Readable, name: string, options: PutOptions = {}): Promise<TransferResult> {
    const storedName = checkedName(name);
    if (typeof source === 'string') {
      const handle = await openLocal(source);
      try {
        const size = (await handle.stat()).size;
        return await this.putBody(storedName, size, options, (socket, onChunk) =>
          sendFileRange(socket, handle, 0, size, onChunk),
        );
      } finally {
        await handle.close();
      }
    }
    if (Buffer.isBuffer(source)) {
      return this.putBody(storedName, source.length, options, async (socket, onChunk) => {
        onChunk(source);
        if (!socket.write(source)) await waitForDrain(socket);
      });
    }
    const size = options.size;
    return this.putBody(storedName, size, options, (socket, onChunk) => sendStream(socket, source, size, onChunk));
  }

  private putBody(
    name: string,
    size: number | undefined,
    options: PutOptions,
    writeBody: (socket: Connection['socket'], onChunk: (chunk: Buffer) => void) => Promise<void>,
  ): Promise<TransferResult> {
    const connection = this.connection;
    const awaitReady = size === undefined || size >= AWAIT_READY_THRESHOLD;
    const flags =
      (options.overwrite ? PutFlag.OVERWRITE : 0) |
      (options.rename ? PutFlag.RENAME : 0) |
      (size === undefined ? PutFlag.CHUNKED : 0) |
      (awaitReady ? PutFlag.AWAIT_READY : 0);
    const hash = createHash('sha256');
    let sent = 0;
    let localSha: Buffer | undefined;

    return new Promise<TransferResult>((resolve, reject) => {
      let ready: ((go: boolean) => void) | undefined;
      let refused = false;
      const finish = (error: FerryError | undefined, result?: TransferResult): void => {
        connection.release(id);
        if (error) reject(error);
        else resolve(result!);
      };
      let id = 0;
      try {
        id = connection.register({
          message: (message) => {
            if (message.type === 'PUT_READY' && ready) {
              ready(true);
              ready = undefined;
            } else if (message.type === 'ERROR') {
              refused = true;
              ready?.(false);
              ready = undefined;
              finish(remoteError(message));
            } else if (message.type === 'PUT_OK' && localSha) {
              const entry = message.entry;
              if (entry.size !== sent || !entry.sha256.equals(localSha)) {
                finish(new FerryError('INTEGRITY', `server stored ${entry.size} bytes with a different sha256 than was sent`));
              } else {
                finish(undefined, { name: entry.name, size: entry.size, sha256: entry.sha256.toString('hex'), mtime: new Date(entry.mtimeMs) });
              }
            } else {
              throw new ProtocolError(`unexpected ${message.type} for a put`);
            }
          },
          fail: (error) => {
            ready?.(false);
            finish(error);
          },
        });
      } catch (error) {
        reject(error);
        return;
      }
      const header = encodeMessage({ type: 'PUT', id, name, flags, size: size ?? 0 });
      connection.outbox
        .enqueue(async () => {
          const socket = connection.socket;
          socket.write(header);
          if (awaitReady) {
            const go = await new Promise<boolean>((r) => (ready = r));
            if (!go) return;
          }
          options.onProgress?.({ bytes: 0, total: size });
          await writeBody(socket, (chunk) => {
            if (refused) throw new FerryError('CLOSED', 'upload refused');
            hash.update(chunk);
            sent += chunk.length;
            options.onProgress?.({ bytes: sent, total: size });
          });
          if (size === undefined) socket.write(chunkHeader(0));
          else if (sent !== size) throw new FerryError('LOCAL_IO', `source gave ${sent} bytes, expected ${size}`);
          localSha = hash.digest();
          socket.write(encodeMessage({ type: 'PUT_END', id, sha256: localSha }));
        })
        .catch((error: unknown) => {
          // A body that cannot be completed leaves the stream mid-frame: the connection is lost.
          const failure = error instanceof FerryError ? error : new FerryError('LOCAL_IO', errorText(error), { cause: error });
          connection.destroy(failure);
        });
    });
  }

  /**
   * Downloads `name` to a local path (via a temporary beside it, renamed once the sha256
   * matches the server's) or into a writable stream (verified at the end).
   */
  async get(name: string, destination: string | Writable, options: GetOptions = {}): Promise<TransferResult> {
    const storedName = checkedName(name);
    if (typeof destination !== 'string') return this.getInto(storedName, destination, options);
    const target = path.resolve(destination);
    const partial = `${target}.ferry-part`;
    const handle = await fs.open(partial, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o644);
    const sink = new FileSink(handle);
    let result: TransferResult;
    try {
      result = await this.receive(storedName, options, (chunk, resume) => {
        if (!sink.write(chunk)) {
          this.connection.pause();
          sink.onDrain(resume);
        }
      }, async () => (await sink.finish()).sha256);
      await handle.close();
    } catch (error) {
      await sink.settle();
      await handle.close().catch(() => undefined);
      await fs.rm(partial, { force: true });
      throw error;
    }
    await fs.rename(partial, target);
    return result;
  }

  private getInto(name: string, destination: Writable, options: GetOptions): Promise<TransferResult> {
    const hash = createHash('sha256');
    return this.receive(name, options, (chunk, resume) => {
      hash.update(chunk);
      if (!destination.write(chunk)) {
        this.connection.pause();
        destination.once('drain', resume);
      }
    }, async () => hash.digest());
  }

  /** Runs one GET; `write` takes each body chunk, `digest` yields the sha256 of what was kept. */
  private receive(
    name: string,
    options: GetOptions,
    write: (chunk: Buffer, resume: () => void) => void,
    digest: () => Promise<Buffer>,
  ): Promise<TransferResult> {
    const connection = this.connection;
    const resume = (): void => connection.resume();
    return new Promise<TransferResult>((resolve, reject) => {
      let announced: { size: number; sha256: Buffer; mtimeMs: number } | undefined;
      let received = 0;
      let id = 0;
      const finish = (error: FerryError | undefined, result?: TransferResult): void => {
        connection.release(id);
        connection.resume();
        if (error) reject(error);
        else resolve(result!);
      };
      try {
        id = connection.register({
          message: (message) => {
            if (message.type === 'GET_OK') {
              announced = { size: message.size, sha256: message.sha256, mtimeMs: message.mtimeMs };
              options.onProgress?.({ bytes: 0, total: message.size });
            } else if (message.type === 'ERROR') {
              finish(remoteError(message));
            } else {
              throw new ProtocolError(`unexpected ${message.type} for a get`);
            }
          },
          body: (data) => {
            received += data.length;
            write(data, resume);
            options.onProgress?.({ bytes: received, total: announced?.size });
          },
          bodyEnd: () => {
            const expected = announced!;
            digest().then(
              (sha256) => {
                if (!sha256.equals(expected.sha256)) {
                  finish(new FerryError('INTEGRITY', `sha256 of the ${received} bytes received does not match the server's: the download is corrupt`));
                } else {
                  finish(undefined, { name, size: received, sha256: sha256.toString('hex'), mtime: new Date(expected.mtimeMs) });
                }
              },
              (error: unknown) => finish(new FerryError('LOCAL_IO', `cannot write the download: ${errorText(error)}`, { cause: error })),
            );
          },
          fail: (error) => finish(error),
        });
        connection.send({ type: 'GET', id, name, offset: 0 });
      } catch (error) {
        reject(error);
      }
    });
  }

  /** Sends one request and collects its reply; `onReply` returns false for a message it does not expect. */
  private request<T>(
    build: (id: number) => Message,
    onReply: (message: Message, done: (value: T) => void) => boolean,
  ): Promise<T> {
    const connection = this.connection;
    return new Promise<T>((resolve, reject) => {
      let id = 0;
      try {
        id = connection.register({
          message: (message) => {
            if (message.type === 'ERROR') {
              connection.release(id);
              reject(remoteError(message));
              return;
            }
            const handled = onReply(message, (value) => {
              connection.release(id);
              resolve(value);
            });
            if (!handled) throw new ProtocolError(`unexpected ${message.type} reply`);
          },
          fail: reject,
        });
        connection.send(build(id));
      } catch (error) {
        reject(error);
      }
    });
  }

  /** Finishes queued requests, then closes the connection. */
  close(): Promise<void> {
    return this.connection.close();
  }

  /** Closes at once; pending calls fail with CLOSED. */
  destroy(): void {
    this.connection.destroy(new FerryError('CLOSED', 'client closed', { fatal: true }));
  }
}

function checkedName(name: string): string {
  const normalized = name.normalize('NFC');
  const problem = nameProblem(normalized);
  if (problem !== undefined) throw new FerryError('BAD_NAME', `bad name "${printableName(name)}": ${problem}`);
  return normalized;
}

function toEntry(entry: WireEntry): Entry {
  const problem = entry.kind === 'folder' ? nameProblem(entry.name) : nameProblem(entry.name);
  if (problem !== undefined) throw new ProtocolError(`server sent an unusable name "${printableName(entry.name)}": ${problem}`);
  return {
    name: entry.name,
    kind: entry.kind,
    size: entry.size,
    mtime: new Date(entry.mtimeMs),
    sha256: entry.kind === 'folder' ? '' : entry.sha256.toString('hex'),
  };
}

async function openLocal(file: string): Promise<fs.FileHandle> {
  try {
    const handle = await fs.open(file, 'r');
    const stats = await handle.stat();
    if (!stats.isFile()) {
      await handle.close();
      throw new FerryError('LOCAL_IO', `${file} is not a regular file`);
    }
    return handle;
  } catch (error) {
    if (error instanceof FerryError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new FerryError('LOCAL_IO', `no such local file: ${file}`, { cause: error });
    if (code === 'EACCES') throw new FerryError('LOCAL_IO', `no permission to read ${file}`, { cause: error });
    if (code === 'EISDIR') throw new FerryError('LOCAL_IO', `${file} is a folder (use -r)`, { cause: error });
    throw new FerryError('LOCAL_IO', `cannot open ${file}: ${errorText(error)}`, { cause: error });
  }
}

/** Streams a Readable as a sized body (exact `size` bytes) or as length-prefixed chunks. */
async function sendStream(
  socket: Connection['socket'],
  source: Readable,
  size: number | undefined,
  onChunk: (chunk: Buffer) => void,
): Promise<void> {
  let sent = 0;
  for await (const piece of source) {
    const data: Buffer = Buffer.isBuffer(piece) ? piece : Buffer.from(piece as string);
    for (let offset = 0; offset < data.length; offset += STREAM_CHUNK) {
      const chunk = data.subarray(offset, Math.min(data.length, offset + Math.min(STREAM_CHUNK, MAX_CHUNK_SIZE)));
      if (size !== undefined && sent + chunk.length > size) {
        throw new FerryError('LOCAL_IO', `stream is longer than the declared ${size} bytes`);
      }
      onChunk(chunk);
      sent += chunk.length;
      if (size === undefined) socket.write(chunkHeader(chunk.length));
      if (!socket.write(chunk)) await waitForDrain(socket);
    }
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
