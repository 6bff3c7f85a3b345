import { WriteStream, type promises as fs } from 'node:fs';
import { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { FerryError, ProtocolError } from '../errors.js';
import { DeferredDigester, DIGEST_HIGH_WATER } from '../io/digester.js';
import { FileSink } from '../io/file-sink.js';
import { NO_RELEASE } from '../transport/read-slab.js';
import type { Hasher } from '../io/digest.js';
import { cutToPrefix, hashPrefix } from '../io/hash-prefix.js';
import { remoteError, type Connection } from './connection.js';
import { DownloadTarget } from './download-target.js';
import { errorText, partialOf } from './requests.js';
import type { GetOptions, TransferResult } from './types.js';

/** Where a GET's body goes: it learns the size, takes each chunk, and yields the sha256 of what it kept. */
interface DownloadSink {
  announce(size: number): void;
  /**
   * Takes a body chunk; calls `resume` after it paused the connection for backpressure. A sink
   * that can tell when it is done with the chunk calls `hold` (see RequestHandler.body).
   */
  write(chunk: Buffer, resume: () => void, hold: () => () => void): void;
  digest(): Promise<Buffer>;
  /** The download failed: release what the sink holds (a hashing thread, in-flight writes). */
  abort(): Promise<void>;
}

/** Downloads into a writable stream, verified at the end (the stream has the bytes by then). */
export function downloadToStream(connection: Connection, name: string, destination: Writable, options: GetOptions): Promise<TransferResult> {
  const digester = new DeferredDigester(connection.algorithm);
  const recycles = writesThrough(destination);
  return receive(connection, name, 0, options, {
    announce: (size) => digester.expect(size),
    write: (chunk, resume, hold) => {
      digester.update(chunk);
      const hashing = digester.pending < DIGEST_HIGH_WATER;
      // A stream known to be done with the bytes once its write callback runs gets the read
      // buffer itself, given back then: no fresh 1 MiB per read left to the GC (hundreds of MB
      // of RSS on a fast stdout). Any other stream may keep the chunk (a collector does), so
      // its chunks are the slab's to lose.
      const release = recycles ? hold() : NO_RELEASE;
      if (!destination.write(chunk, () => release()) || !hashing) {
        connection.pause();
        let waiting = 2;
        const bothReady = (): void => void (--waiting === 0 && resume());
        if (destination.writableNeedDrain) destination.once('drain', bothReady);
        else bothReady();
        digester.onCapacity(bothReady);
      }
    },
    digest: () => digester.digest(),
    abort: () => {
      digester.abort();
      return Promise.resolve();
    },
  });
}

/**
 * Streams that are finished with a chunk when its write callback runs (the bytes went to the
 * kernel): a socket or pipe, a file stream, and stdout whatever it is.
 */
function writesThrough(stream: Writable): boolean {
  return stream === process.stdout || stream === process.stderr || stream instanceof Socket || stream instanceof WriteStream;
}

/**
 * Downloads to a local path through `<path>.ferry-part`, under a lock that keeps a second
 * download to the same path out (in this process or another); the verified file is put in
 * place at the end (download-target.ts). An interrupted download's part is continued after
 * its prefix is checked against the server's (PROTOCOL.md §5.4).
 */
export async function downloadToFile(connection: Connection, name: string, destination: string, options: GetOptions): Promise<TransferResult> {
  const target = await DownloadTarget.claim(destination);
  let kept = false;
  try {
    const handle = target.handle;
    const resumable = await resumableDownload(connection, name, handle, options);
    const offset = resumable?.offset ?? 0;
    await cutToPrefix(handle, offset);
    const digester = new DeferredDigester(connection.algorithm, resumable?.hasher);
    const sink = new FileSink(handle, offset, digester);
    let result: TransferResult;
    try {
      result = await receive(connection, name, offset, options, {
        announce: (size) => digester.expect(size - offset),
        write: (chunk, resume, hold) => {
          if (!sink.write(chunk, hold())) {
            connection.pause();
            sink.onDrain(resume);
          }
        },
        digest: async () => (await sink.finish()).digest,
        abort: () => sink.abort(true),
      });
    } catch (error) {
      // Keep what arrived for a resume, unless it is known bad or there is nothing.
      kept = sink.bytes + offset > 0 && !(error instanceof FerryError && (error.code === 'INTEGRITY' || error.code === 'NOT_FOUND'));
      throw error;
    }
    await target.place();
    return result;
  } finally {
    await target.release(kept);
  }
}

/** Checks a partial download against the server's bytes; returns the verified prefix, if any. */
async function resumableDownload(
  connection: Connection,
  name: string,
  handle: fs.FileHandle,
  options: GetOptions,
): Promise<{ offset: number; hasher: Hasher } | undefined> {
  const held = (await handle.stat()).size;
  if (held === 0 || options.resume === false || connection.version < 2) return undefined;
  const remote = await partialOf(connection, (id) => ({ type: 'HASH_PREFIX', id, name, length: held }));
  if (remote.offset === 0) return undefined;
  const hasher = await hashPrefix(handle, remote.offset, connection.algorithm);
  if (!hasher.peek().equals(remote.digest)) return undefined; // differs: start over
  options.onResume?.(remote.offset);
  return { offset: remote.offset, hasher };
}

/**
 * Runs one GET into `sink`. Settles once the sink has finished or given up: on any failure
 * the sink is aborted before the call rejects, so nothing it holds outlives the call.
 */
function receive(connection: Connection, name: string, offset: number, options: GetOptions, sink: DownloadSink): Promise<TransferResult> {
  const resume = (): void => connection.resume();
  return new Promise<TransferResult>((resolve, reject) => {
    let announced: { size: number; digest: Buffer; mtimeMs: number } | undefined;
    let received = offset;
    let id = 0;
    let settled = false;
    const finish = (error: FerryError | undefined, result?: TransferResult): void => {
      if (settled) return;
      settled = true;
      connection.release(id);
      connection.resume();
      if (!error) return resolve(result!);
      sink.abort().then(
        () => reject(error),
        () => reject(error),
      );
    };
    try {
      id = connection.register({
        message: (message) => {
          if (message.type === 'GET_OK' && !announced) {
            if (message.offset !== offset) throw new ProtocolError(`GET_OK starts at ${message.offset}, asked for ${offset}`);
            announced = { size: message.size, digest: message.digest, mtimeMs: message.mtimeMs };
            sink.announce(message.size);
            options.onProgress?.({ bytes: offset, total: message.size });
          } else if (message.type === 'ERROR') {
            finish(remoteError(message));
          } else {
            throw new ProtocolError(`unexpected ${message.type} for a get`);
          }
        },
        body: (data, hold) => {
          received += data.length;
          sink.write(data, resume, hold);
          options.onProgress?.({ bytes: received, total: announced?.size });
        },
        bodyEnd: () => {
          const expected = announced!;
          sink.digest().then(
            (digest) => {
              const { algorithm } = connection;
              if (!digest.equals(expected.digest)) {
                finish(new FerryError('INTEGRITY', `${algorithm} of the ${received} bytes received does not match the server's: the download is corrupt`));
              } else {
                finish(undefined, { name, size: received, digest: digest.toString('hex'), algorithm, mtime: new Date(expected.mtimeMs), resumedFrom: offset });
              }
            },
            (error: unknown) => finish(new FerryError('LOCAL_IO', `cannot write the download: ${errorText(error)}`, { cause: error })),
          );
        },
        fail: (error) => finish(error),
      });
      connection.send({ type: 'GET', id, name, offset });
    } catch (error) {
      finish(error instanceof FerryError ? error : new FerryError('LOCAL_IO', errorText(error), { cause: error }));
    }
  });
}
