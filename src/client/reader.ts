import { FerryError, ProtocolError } from '../errors.js';
import { ListFlag, MAX_LIST_PAGE } from '../protocol/index.js';
import { Connection, type ConnectOptions } from './connection.js';
import { listStream } from './listing.js';
import { checkedName, request, toEntry } from './requests.js';
import type { Entry } from './types.js';

/**
 * The calls that only read the store's index (list, stat), in a module of their own: `ferry ls`
 * and `stat` load this and not the transfer code (upload, download, batches, hashing).
 * FerryClient adds the rest.
 */
/** Entries a page of `listPage` asks for unless told: ~100 KB of entries, ~2 frames. */
export const LIST_PAGE = 1000;

export class FerryReader {
  constructor(protected readonly connection: Connection) {}

  get serverName(): string {
    return this.connection.serverName;
  }

  /** Largest file the server accepts, in bytes. */
  get maxFileSize(): number {
    return this.connection.maxFileSize;
  }

  /** The protocol version agreed with the server (5: `putBatch`; 6: `getBatch`; 7: `listPage`). */
  get version(): number {
    return this.connection.version;
  }

  /** Files under `prefix` ('' for all). `recursive: false` lists one folder, with subfolders. */
  list(prefix = '', options: { recursive?: boolean } = {}): Promise<Entry[]> {
    const recursive = options.recursive ?? true;
    const entries: Entry[] = [];
    return request(
      this.connection,
      (id) => ({ type: 'LIST', id, prefix: prefix.replace(/\/+$/, ''), flags: recursive ? ListFlag.RECURSIVE : 0 }),
      (message, done) => {
        if (message.type !== 'ENTRIES') return false;
        for (const entry of message.entries) entries.push(toEntry(entry, this.connection.algorithm));
        if (!message.more) done(entries);
        return true;
      },
    );
  }

  /**
   * One page of a folder's listing (protocol 7): the entries `list` gives with `recursive:
   * false` whose names sort after `after` ('' from the start), at most `limit` (1 to 4096,
   * default 1000); fewer only on the folder's last page. Ask for the next page with the last
   * entry's name as `after`. Memory is a page, whatever the folder's size.
   */
  listPage(prefix = '', options: { after?: string; limit?: number } = {}): Promise<Entry[]> {
    const limit = options.limit ?? LIST_PAGE;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_PAGE) return Promise.reject(new RangeError(`limit must be 1 to ${MAX_LIST_PAGE}, not ${limit}`));
    if (this.connection.version < 7) {
      return Promise.reject(new FerryError('UNSUPPORTED', `this server speaks protocol ${this.connection.version}: it cannot list a folder in pages (needs 7)`));
    }
    const entries: Entry[] = [];
    return request(
      this.connection,
      (id) => ({ type: 'LIST', id, prefix: prefix.replace(/\/+$/, ''), flags: ListFlag.PAGE, after: options.after ?? '', limit }),
      (message, done) => {
        if (message.type !== 'ENTRIES') return false;
        for (const entry of message.entries) entries.push(toEntry(entry, this.connection.algorithm));
        if (entries.length > limit) throw new ProtocolError(`${entries.length} entries for a page of ${limit}`);
        if (!message.more) done(entries);
        return true;
      },
    );
  }

  /**
   * A folder's entries (`list` with `recursive: false`) a page at a time (`listPage`), or in one
   * piece from a server older than protocol 7.
   */
  async *listFolder(prefix = '', options: { limit?: number } = {}): AsyncGenerator<Entry[]> {
    if (this.connection.version < 7) {
      yield await this.list(prefix, { recursive: false });
      return;
    }
    const limit = options.limit ?? LIST_PAGE;
    for (let after = ''; ; ) {
      const page = await this.listPage(prefix, { after, limit });
      if (page.length > 0) yield page;
      if (page.length < limit) return;
      after = page[page.length - 1]!.name;
    }
  }

  /**
   * `list` as batches, read as the server sends them: a few batches are held ahead of the
   * consumer, so a listing of any size takes bounded memory. Breaking out early is safe.
   * Backpressure stops the whole connection (the protocol has no per-request window): while
   * the loop does not pull, other calls on this client wait too, so do not await them from
   * inside the loop; use a second client for that.
   */
  listStream(prefix = '', options: { recursive?: boolean } = {}): AsyncIterableIterator<Entry[]> {
    return listStream(this.connection, prefix, options.recursive ?? true);
  }

  stat(name: string): Promise<Entry> {
    return request(this.connection, (id) => ({ type: 'STAT', id, name: checkedName(name) }), (message, done) => {
      if (message.type !== 'ENTRY') return false;
      done(toEntry(message.entry, this.connection.algorithm));
      return true;
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

/**
 * Connects for listing and stat only. A reader never computes a digest, it only shows the
 * server's, so it offers BLAKE3 (unless `digest: 'sha256'`) without loading the native
 * binding: the listing is the one a full client gets, and the server never has to compute
 * SHA-256 digests just to show them.
 */
export async function connectReader(options: ConnectOptions = {}): Promise<FerryReader> {
  return new FerryReader(await Connection.open(options, { computesDigests: false }));
}
