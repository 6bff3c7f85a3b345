import type { Socket } from 'node:net';
import { FerryError } from '../errors.js';
import {
  encodeMessage,
  ENTRIES_OVERHEAD,
  entryWireSize,
  ListFlag,
  MAX_CONTROL_PAYLOAD,
  type MessageOf,
  type WireEntry,
} from '../protocol/index.js';
import { closeFile } from '../storage/backend.js';
import type { StoredEntry } from '../storage/store.js';
import { sendFileRange } from '../transport/file-body.js';
import { sendStreamRange, STREAM_CHUNK } from '../transport/stream-body.js';
import { writeAndWait } from '../transport/outbox.js';
import type { SessionIo } from './session-io.js';
import { toWire } from './uploads.js';

/** Refused before any byte of the reply left: the request gets an ERROR, the connection lives. */
class Refusal {
  constructor(readonly error: unknown) {}
}

/**
 * Replies that are bodies or many frames (GET, LIST). Each runs as one outbox task, so it starts
 * only when the line is free and the files it needs are opened then — not when the request
 * arrives: pipelined requests cost a queue entry each, not an open file or a listing in memory.
 * Every write waits for the socket to drain, so a peer that reads slowly holds a bounded amount.
 */
export class Downloads {
  constructor(private readonly io: SessionIo) {}

  get(message: MessageOf<'GET'>, socket: Socket): Promise<void> {
    const { io } = this;
    const { store, files, log } = io.ctx;
    return this.task(message.id, async () => {
      let release: (() => void) | undefined;
      let opened: Awaited<ReturnType<typeof store.openRead>> | undefined;
      try {
        release = await io.working(files.acquire());
        opened = await io.working(store.openRead(message.name, io.algorithm));
        if (message.offset > opened.size) {
          throw new FerryError('PROTOCOL', `offset ${message.offset} is beyond the file's ${opened.size} bytes`);
        }
      } catch (error) {
        if (opened) await closeFile(opened);
        release?.();
        throw new Refusal(error);
      }
      try {
        const file = opened;
        await io.outbox.rawBody(async () => {
          socket.write(
            encodeMessage({ type: 'GET_OK', id: message.id, size: file.size, offset: message.offset, mtimeMs: file.mtimeMs, digest: file.digest }),
            io.outbox.onWritten,
          );
          try {
            if (file.handle) await sendFileRange(socket, file.handle, message.offset, file.size - message.offset, undefined, io.outbox.onWritten);
            else await sendStreamRange(socket, file.read(message.offset, file.size - 1, STREAM_CHUNK), file.size - message.offset, io.outbox.onWritten);
          } catch (error) {
            // The size is promised: a short file or a broken socket ends the connection.
            socket.destroy();
            throw error;
          }
        });
        log.info({ peer: io.peer, name: message.name, size: opened.size }, 'sent');
      } finally {
        await closeFile(opened);
        release();
      }
    });
  }

  list(message: MessageOf<'LIST'>, socket: Socket): Promise<void> {
    const { io } = this;
    return this.task(message.id, async () => {
      const { store } = io.ctx;
      const options = { algorithm: io.algorithm };
      const batches = (
        message.flags & ListFlag.PAGE
          ? onePage(store.listPage(message.prefix, message.after ?? '', message.limit ?? 0, options))
          : store.listStream(message.prefix, (message.flags & ListFlag.RECURSIVE) !== 0, options)
      )[Symbol.asyncIterator]();
      // The first batch decides between a refusal (bad name, …) and a listing.
      let next: IteratorResult<StoredEntry[]>;
      try {
        next = await io.working(batches.next());
      } catch (error) {
        throw new Refusal(error);
      }
      // Entries go out in frames under the control-frame cap, each once the socket takes the
      // one before: a listing of any size holds one folder's batch in memory, not the tree.
      let frame: WireEntry[] = [];
      let frameSize = ENTRIES_OVERHEAD;
      try {
        while (!next.done) {
          for (const entry of next.value) {
            const wire = toWire(entry);
            const size = entryWireSize(wire);
            if (frameSize + size > MAX_CONTROL_PAYLOAD || frame.length === 0xffff) {
              await writeAndWait(socket, encodeMessage({ type: 'ENTRIES', id: message.id, more: true, entries: frame }), io.outbox.onWritten);
              frame = [];
              frameSize = ENTRIES_OVERHEAD;
            }
            frame.push(wire);
            frameSize += size;
          }
          try {
            next = await io.working(batches.next());
          } catch (error) {
            // Part of the listing is out: the promise of a whole listing cannot be kept.
            socket.destroy();
            throw error;
          }
        }
      } finally {
        if (!next.done) await batches.return?.(); // abandoned (closed connection): release its folders
      }
      await writeAndWait(socket, encodeMessage({ type: 'ENTRIES', id: message.id, more: false, entries: frame }), io.outbox.onWritten);
    });
  }

  /** Runs a reply as an outbox task; a refusal becomes an ERROR for that request. */
  private async task(id: number, reply: () => Promise<void>): Promise<void> {
    try {
      await this.io.outbox.enqueue(reply);
    } catch (error) {
      if (error instanceof Refusal && !this.io.closed) this.io.sendError(id, error.error);
    }
  }
}

/** A page of a listing (LIST with PAGE) as the one batch of a listing stream. */
async function* onePage(page: Promise<StoredEntry[]>): AsyncGenerator<StoredEntry[]> {
  yield await page;
}
