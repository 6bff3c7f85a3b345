import type { Hash } from 'node:crypto';
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
import { FileSink } from '../io/file-sink.js';
import { sendFileRange } from '../transport/file-body.js';
import { createDigester, DeferredDigester, DIGEST_HIGH_WATER, InlineDigester } from '../io/digester.js';
import { hashPrefix } from '../io/hash-prefix.js';
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
  /** Continue an interrupted upload of this file if the server kept one (default true). */
  resume?: boolean;
  /** On a clash the server stores "name (1).ext" instead of refusing with EXISTS. */
  rename?: boolean;
  /** Size of a stream source, if known (otherwise the body is sent chunked). */
  size?: number;
  onProgress?: (progress: Progress) => void;
  /** Called once when a transfer continues an interrupted one, with the byte it resumes at. */
  onResume?: (offset: number) => void;
}

export interface GetOptions {
  onProgress?: (progress: Progress) => void;
  /** Called once when a transfer continues an interrupted one, with the byte it resumes at. */
  onResume?: (offset: number) => void;
  /** Continue `<path>.ferry-part` left by an interrupted download, after checking it (default true). */
  resume?: boolean;
}

export interface TransferResult {
  /** The name the file is stored under (a put with `rename` may differ from the one asked). */
  name: string;
  size: number;
  sha256: string;
  mtime: Date;
  /** Bytes that were already in place from an interrupted transfer (0 for a fresh one). */
  resumedFrom: number;
}

interface DownloadSink {
  announce(size: number): void;
  write(chunk: Buffer, resume: () => void): void;
  digest(): Promise<Buffer>;
}

/** A verified prefix of an interrupted upload: its length, digest and the hash to continue. */
interface Resumable {
  offset: number;
  sha256: Buffer;
  hash: Hash;
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

  /** Removes every file under the folder `prefix`. */
  removeTree(prefix: string): Promise<void> {
    return this.request(
      (id) => ({ type: 'DELETE', id, name: checkedName(prefix.replace(/\/+$/, '')), flags: ListFlag.RECURSIVE }),
      (message, done) => {
        if (message.type !== 'OK') return false;
        done(undefined);
        return true;
      },
    );
  }

  /** What the server holds of an interrupted upload of (name, size): length and sha256. */
  private partialOf(request: (id: number) => Message): Promise<{ offset: number; sha256: Buffer }> {
    return this.request(request, (message, done) => {
      if (message.type !== 'PARTIAL') return false;
      done({ offset: message.offset, sha256: message.sha256 });
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
      const { handle, size } = await openLocal(source);
      try {
        const resumable = await this.resumableUpload(storedName, size, handle, options);
        return await this.putBody(storedName, size, options, resumable, (socket, from, onChunk) =>
          sendFileRange(socket, handle, from, size - from, onChunk),
        );
      } finally {
        await handle.close();
      }
    }
    if (Buffer.isBuffer(source)) {
      return this.putBody(storedName, source.length, options, undefined, async (socket, _from, onChunk) => {
        await onChunk(source);
        if (!socket.write(source)) await waitForDrain(socket);
      });
    }
    const size = options.size;
    return this.putBody(storedName, size, options, undefined, (socket, _from, onChunk) => sendStream(socket, source, size, onChunk));
  }

  /**
   * Asks the server what it kept of an earlier attempt, and checks that prefix against the
   * local file. The prefix is read once: its hash is continued for the rest of the upload.
   */
  private async resumableUpload(name: string, size: number, handle: fs.FileHandle, options: PutOptions): Promise<Resumable | undefined> {
    if (options.resume === false || size < AWAIT_READY_THRESHOLD || this.connection.version < 2) return undefined;
    const partial = await this.partialOf((id) => ({ type: 'PROBE_UPLOAD', id, name, size }));
    if (partial.offset === 0 || partial.offset > size) return undefined;
    const hash = await hashPrefix(handle, partial.offset);
    if (!hash.copy().digest().equals(partial.sha256)) return undefined; // changed locally: start over
    return { offset: partial.offset, sha256: partial.sha256, hash };
  }

  private putBody(
    name: string,
    size: number | undefined,
    options: PutOptions,
    resumable: Resumable | undefined,
    writeBody: (socket: Connection['socket'], from: number, onChunk: (chunk: Buffer) => Promise<void> | undefined) => Promise<void>,
  ): Promise<TransferResult> {
    const connection = this.connection;
    const awaitReady = size === undefined || size >= AWAIT_READY_THRESHOLD || resumable !== undefined;
    const flags =
      (options.overwrite ? PutFlag.OVERWRITE : 0) |
      (options.rename ? PutFlag.RENAME : 0) |
      (size === undefined ? PutFlag.CHUNKED : 0) |
      (awaitReady ? PutFlag.AWAIT_READY : 0) |
      (resumable ? PutFlag.RESUME : 0);
    let from = 0;
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
      /** Where the server said the body starts: 0, or the prefix both sides verified. */
      const startAt = (offset: number, prefixSha: Buffer): void => {
        if (offset === 0) return;
        if (!resumable || offset !== resumable.offset || !prefixSha.equals(resumable.sha256)) {
          throw new FerryError('CONFLICT', `the server's partial of "${name}" changed while resuming: run the command again`);
        }
        from = offset;
        sent = offset;
      };
      let id = 0;
      try {
        id = connection.register({
          message: (message) => {
            if (message.type === 'PUT_READY' && ready) {
              try {
                startAt(message.offset, message.prefixSha256);
              } catch (error) {
                ready(false);
                ready = undefined;
                connection.destroy(error as FerryError);
                return;
              }
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
                finish(undefined, {
                  name: entry.name,
                  size: entry.size,
                  sha256: entry.sha256.toString('hex'),
                  mtime: new Date(entry.mtimeMs),
                  resumedFrom: from,
                });
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
          if (from > 0) options.onResume?.(from);
          const hash = from > 0 ? new InlineDigester(resumable!.hash) : createDigester(size);
          options.onProgress?.({ bytes: sent, total: size });
          await writeBody(socket, from, (chunk) => {
            if (refused) throw new FerryError('CLOSED', 'upload refused');
            hash.update(chunk);
            sent += chunk.length;
            options.onProgress?.({ bytes: sent, total: size });
            // Hashing on another core may lag the socket: wait rather than queue without bound.
            if (hash.pending >= DIGEST_HIGH_WATER) return new Promise<void>((resume) => hash.onCapacity(resume));
            return undefined;
          });
          if (size === undefined) socket.write(chunkHeader(0));
          else if (sent !== size) throw new FerryError('LOCAL_IO', `source gave ${sent} bytes, expected ${size}`);
          localSha = await hash.digest();
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
    const handle = await fs.open(partial, constants.O_RDWR | constants.O_CREAT, 0o644);
    let sink: FileSink;
    let digester: DeferredDigester;
    let offset = 0;
    try {
      const resumable = await this.resumableDownload(storedName, handle, options);
      offset = resumable?.offset ?? 0;
      await handle.truncate(offset);
      digester = new DeferredDigester(resumable?.hash);
      sink = new FileSink(handle, offset, digester);
    } catch (error) {
      await handle.close();
      throw error;
    }
    let result: TransferResult;
    try {
      result = await this.receive(storedName, offset, options, {
        announce: (size) => digester.expect(size - offset),
        write: (chunk, resume) => {
          if (!sink.write(chunk)) {
            this.connection.pause();
            sink.onDrain(resume);
          }
        },
        digest: async () => (await sink.finish()).sha256,
      });
      await handle.close();
    } catch (error) {
      await sink.settle();
      const kept = sink.bytes + offset;
      await handle.close().catch(() => undefined);
      // Keep what arrived for a resume, unless it is known bad or there is nothing.
      if (kept === 0 || (error instanceof FerryError && (error.code === 'INTEGRITY' || error.code === 'NOT_FOUND'))) {
        await fs.rm(partial, { force: true });
      }
      throw error;
    }
    await fs.rename(partial, target);
    return result;
  }

  /** Checks a partial download against the server's bytes; returns the verified prefix, if any. */
  private async resumableDownload(name: string, handle: fs.FileHandle, options: GetOptions): Promise<{ offset: number; hash: Hash } | undefined> {
    const held = (await handle.stat()).size;
    if (held === 0 || options.resume === false || this.connection.version < 2) return undefined;
    const remote = await this.partialOf((id) => ({ type: 'HASH_PREFIX', id, name, length: held }));
    if (remote.offset === 0) return undefined;
    const hash = await hashPrefix(handle, remote.offset);
    if (!hash.copy().digest().equals(remote.sha256)) return undefined; // differs: start over
    options.onResume?.(remote.offset);
    return { offset: remote.offset, hash };
  }

  private getInto(name: string, destination: Writable, options: GetOptions): Promise<TransferResult> {
    const digester = new DeferredDigester();
    return this.receive(name, 0, options, {
      announce: (size) => digester.expect(size),
      write: (chunk, resume) => {
        digester.update(chunk);
        const hashing = digester.pending < DIGEST_HIGH_WATER;
        if (!destination.write(chunk) || !hashing) {
          this.connection.pause();
          let waiting = 2;
          const bothReady = (): void => void (--waiting === 0 && resume());
          if (destination.writableNeedDrain) destination.once('drain', bothReady);
          else bothReady();
          digester.onCapacity(bothReady);
        }
      },
      digest: () => digester.digest(),
    });
  }

  /**
   * Runs one GET; the sink learns the size (`announce`), takes each body chunk (`write`,
   * calling `resume` after it paused the connection) and yields the sha256 of what it kept.
   */
  private receive(name: string, offset: number, options: GetOptions, sink: DownloadSink): Promise<TransferResult> {
    const { write, digest } = sink;
    const connection = this.connection;
    const resume = (): void => connection.resume();
    return new Promise<TransferResult>((resolve, reject) => {
      let announced: { size: number; sha256: Buffer; mtimeMs: number } | undefined;
      let received = offset;
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
              if (message.offset !== offset) throw new ProtocolError(`GET_OK starts at ${message.offset}, asked for ${offset}`);
              announced = { size: message.size, sha256: message.sha256, mtimeMs: message.mtimeMs };
              sink.announce(message.size);
              options.onProgress?.({ bytes: offset, total: message.size });
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
                  finish(undefined, { name, size: received, sha256: sha256.toString('hex'), mtime: new Date(expected.mtimeMs), resumedFrom: offset });
                }
              },
              (error: unknown) => finish(new FerryError('LOCAL_IO', `cannot write the download: ${errorText(error)}`, { cause: error })),
            );
          },
          fail: (error) => finish(error),
        });
        connection.send({ type: 'GET', id, name, offset });
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

/** A listing entry as the library returns it (its name was checked in Connection.route). */
function toEntry(entry: WireEntry): Entry {
  return {
    name: entry.name,
    kind: entry.kind,
    size: entry.size,
    mtime: new Date(entry.mtimeMs),
    sha256: entry.kind === 'folder' ? '' : entry.sha256.toString('hex'),
  };
}

/** Opens a local regular file for upload; its size is taken from the open file, once. */
async function openLocal(file: string): Promise<{ handle: fs.FileHandle; size: number }> {
  try {
    const handle = await fs.open(file, 'r');
    const stats = await handle.stat();
    if (!stats.isFile()) {
      await handle.close();
      throw new FerryError('LOCAL_IO', `${file} is not a regular file`);
    }
    return { handle, size: stats.size };
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
  onChunk: (chunk: Buffer) => Promise<void> | undefined,
): Promise<void> {
  let sent = 0;
  for await (const piece of source) {
    const data: Buffer = Buffer.isBuffer(piece) ? piece : Buffer.from(piece as string);
    for (let offset = 0; offset < data.length; offset += STREAM_CHUNK) {
      const chunk = data.subarray(offset, Math.min(data.length, offset + Math.min(STREAM_CHUNK, MAX_CHUNK_SIZE)));
      if (size !== undefined && sent + chunk.length > size) {
        throw new FerryError('LOCAL_IO', `stream is longer than the declared ${size} bytes`);
      }
      await onChunk(chunk);
      sent += chunk.length;
      if (size === undefined) socket.write(chunkHeader(chunk.length));
      if (!socket.write(chunk)) await waitForDrain(socket);
    }
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
