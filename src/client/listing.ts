import { FerryError, ProtocolError } from '../errors.js';
import { ListFlag } from '../protocol/index.js';
import { remoteError, type Connection } from './connection.js';
import { toEntry } from './requests.js';
import type { Entry } from './types.js';

/**
 * ENTRIES frames (up to 64 KiB each, ~600 entries) held ahead of the consumer before the
 * connection stops reading: the server's own backpressure then holds the rest.
 */
const MAX_AHEAD = 4;

/**
 * A listing read batch by batch as the server sends it (PROTOCOL.md §4, LIST), so a listing of
 * any size costs a few frames of memory: `list()` of 100,000 files held 170 MB in the CLI.
 * Unlike `list()`, no listing size cap applies: the consumer's pace bounds the memory.
 * Stopping early (break) drops the rest of the reply as it arrives; the connection stays usable.
 */
export function listStream(connection: Connection, prefix: string, recursive: boolean): AsyncIterableIterator<Entry[]> {
  const ready: Entry[][] = [];
  let ended = false;
  let failure: FerryError | undefined;
  let wake: (() => void) | undefined;
  let dropping = false;
  let paused = false;
  let id = 0;

  const notify = (): void => {
    const waiter = wake;
    wake = undefined;
    waiter?.();
  };
  const resume = (): void => {
    if (!paused) return;
    paused = false;
    connection.resume();
  };
  const finish = (error?: FerryError): void => {
    ended = true;
    failure ??= error;
    connection.release(id);
    resume();
    notify();
  };

  const start = (): void => {
    id = connection.register({
      streaming: true,
      message: (message) => {
        if (message.type === 'ERROR') return finish(remoteError(message));
        if (message.type !== 'ENTRIES') throw new ProtocolError(`unexpected ${message.type} reply to a listing`);
        if (!dropping && message.entries.length > 0) ready.push(message.entries.map((entry) => toEntry(entry, connection.algorithm)));
        if (!message.more) return finish();
        if (ready.length >= MAX_AHEAD && !paused) {
          paused = true;
          connection.pause();
        }
        notify();
      },
      fail: (error) => finish(error),
    });
    connection.send({ type: 'LIST', id, prefix: prefix.replace(/\/+$/, ''), flags: recursive ? ListFlag.RECURSIVE : 0 });
  };

  let started = false;
  const iterator: AsyncIterableIterator<Entry[]> = {
    async next(): Promise<IteratorResult<Entry[]>> {
      if (!started) {
        started = true;
        start();
      }
      for (;;) {
        const batch = ready.shift();
        if (batch !== undefined) {
          if (ready.length < MAX_AHEAD) resume();
          return { value: batch, done: false };
        }
        if (failure !== undefined) throw failure;
        if (ended) return { value: undefined, done: true };
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
    async return(): Promise<IteratorResult<Entry[]>> {
      // The reply cannot be cancelled on the wire: read and drop the rest.
      dropping = true;
      ready.length = 0;
      resume();
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
