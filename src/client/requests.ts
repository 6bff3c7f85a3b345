import type { DigestAlgorithm } from '../io/digest.js';
import { FerryError, ProtocolError } from '../errors.js';
import { nameProblem, printableName, type Message, type WireEntry } from '../protocol/index.js';
import { remoteError, type Connection } from './connection.js';
import type { Entry } from './types.js';

/**
 * Sends one request and collects its reply; `onReply` returns false for a message it does not
 * expect (a protocol error). An ERROR rejects this call only.
 */
export function request<T>(
  connection: Connection,
  build: (id: number) => Message,
  onReply: (message: Message, done: (value: T) => void) => boolean,
): Promise<T> {
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
      connection.release(id);
      reject(error);
    }
  });
}

/** What the server holds of an interrupted transfer (PROBE_UPLOAD, HASH_PREFIX): length and digest. */
export function partialOf(connection: Connection, build: (id: number) => Message): Promise<{ offset: number; digest: Buffer }> {
  return request(connection, build, (message, done) => {
    if (message.type !== 'PARTIAL') return false;
    done({ offset: message.offset, digest: message.digest });
    return true;
  });
}

/**
 * A modification time as the protocol carries it: whole milliseconds since 1970 (fs.Stats'
 * mtimeMs has a fraction: sent as it is, it could not be encoded).
 */
export function wireMtime(mtimeMs: number): number {
  if (!Number.isFinite(mtimeMs) || mtimeMs < 0) {
    throw new FerryError('UNSUPPORTED', `a modification time before 1970 cannot be kept (mtimeMs ${mtimeMs}): send the file without -p / mtimeMs`);
  }
  return Math.floor(mtimeMs);
}

/** A name as the server will see it (NFC), checked before anything is sent. */
export function checkedName(name: string): string {
  const normalized = name.normalize('NFC');
  const problem = nameProblem(normalized);
  if (problem !== undefined) throw new FerryError('BAD_NAME', `bad name "${printableName(name)}": ${problem}`);
  return normalized;
}

/** A listing entry as the library returns it (its name was checked in Connection.route). */
export function toEntry(entry: WireEntry, algorithm: DigestAlgorithm): Entry {
  return {
    name: entry.name,
    kind: entry.kind,
    size: entry.size,
    mtime: new Date(entry.mtimeMs),
    digest: entry.kind === 'folder' ? '' : entry.digest.toString('hex'),
    algorithm,
  };
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
