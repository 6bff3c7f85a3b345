import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { systemClock, type Clock } from '../../clock.js';
import { FerryError } from '../../errors.js';
import { createHasher, type DigestAlgorithm } from '../../io/digest.js';
import { nameProblem, normalizePrefix, RESERVED_COMPONENT } from '../../protocol/names.js';
import type { RemoteFile, SpaceUse, StoreBackend } from '../backend.js';
import { checkName } from '../errors.js';
import type { ListOptions, StoredEntry, UploadOptions } from '../types.js';
import { Bucket, type ObjectHead } from './bucket.js';
import { decodeMeta, encodeMeta, Keys, type FileMeta } from './keys.js';
import { formatS3Location, type S3Location } from './location.js';
import { MetaCache } from './meta-cache.js';
import { SharedQuota } from './quota.js';
import { S3Partials } from './partials.js';
import { S3Upload, type NamePlace, type S3UploadOptions, type UploadContext } from './upload.js';
import { Window } from './window.js';
import { storeEachFile } from '../batch-each.js';
import type { BatchFile, BatchOptions, BatchOutcome } from '../batch.js';
import { verifiedRead, type SmallOutcome } from '../read-batch.js';
import { SmallestAfter, utf8Bounds } from '../list-page.js';

export interface S3StoreOptions {
  /** The local folder for the server's own state (certificate, counters). */
  stateRoot: string;
  maxFileSize?: number;
  /** Bytes all servers on the prefix may hold together, kept approximately (see SharedQuota). */
  quota?: number;
  /** How long an interrupted upload is kept for resuming (default 24 h), across all servers. */
  partialTtlMs?: number;
  /** Part size of multipart uploads, and the largest file sent in one PutObject (default 8 MiB; S3's minimum is 5 MiB). */
  partSize?: number;
  clock?: Clock;
}

const DEFAULT_PARTIAL_TTL_MS = 24 * 3600_000;
const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
/** Requests at once for one task (a listing's HEADs, a batch's survey). */
const HEAD_CONCURRENCY = 16;
/** Per store, over all connections: HEADs at once of listings, and GETs at once of batch reads (GET_BATCH). */
const LIST_HEAD_WINDOW = 16;
const READ_WINDOW = 16;
const NO_DIGEST = Buffer.alloc(32);
const SWEEP_EVERY_MS = 10 * 60_000;
/** An upload of undeclared size reserves quota in steps of at least this much. */
const RESERVE_STEP = 8 * 1024 * 1024;

/**
 * Files in an S3 bucket under a key prefix, shared by any number of servers (see Keys for
 * the layout). The promises of the local store hold across servers:
 * - visible only once whole and verified: a file's key is written once, after the bytes were
 *   hashed and checked, with both digests in its metadata;
 * - no-clobber: every key under a name is created with PutObject If-None-Match: * (a small
 *   file's data, or a large file's manifest pointing at its finished blob), so of concurrent
 *   creators on any servers exactly one wins; CompleteMultipartUpload, whose condition some
 *   stores ignore, only ever writes a private blob of random name;
 * - overwrite replaces the key in one PUT (atomic for readers that open it after);
 * - interrupted uploads are multipart uploads with a record, resumable through any server.
 */
export class S3Store implements StoreBackend {
  readonly stateDir: string;
  readonly location: string;
  readonly maxFileSize: number;
  readonly fsync = true;
  /** Its batches' files go to the bucket from memory: no local file is held open for them. */
  readonly batchOpenFiles = 1;
  readonly partials: S3Partials;
  /** Per upload in progress, the quota room reserved for it (0 without a quota). */
  private readonly active = new Map<S3Upload, number>();
  private readonly shared: SharedQuota | undefined;
  private readonly uploadContext: UploadContext;
  private readonly metas = new MetaCache();
  private readonly reads = new Window(READ_WINDOW);
  private readonly listHeads = new Window(LIST_HEAD_WINDOW);

  private constructor(
    readonly root: string,
    private readonly bucket: Bucket,
    private readonly keys: Keys,
    partials: S3Partials,
    location: S3Location,
    options: S3StoreOptions,
  ) {
    this.stateDir = path.join(root, RESERVED_COMPONENT);
    this.location = formatS3Location(location);
    this.maxFileSize = options.maxFileSize ?? Number.MAX_SAFE_INTEGER;
    this.partials = partials;
    // A kept partial that an upload of this server continues counts as that upload's reservation.
    const continued = (name: string, size: number): boolean => [...this.active.keys()].some((u) => u.name === name && u.declaredSize === size);
    this.shared = options.quota === undefined ? undefined : new SharedQuota(options.quota, bucket, location.prefix, options.clock ?? systemClock, () => partials.heldBytesExcept(continued));
    this.uploadContext = {
      bucket,
      keys,
      partials,
      partSize: options.partSize ?? DEFAULT_PART_SIZE,
      maxFileSize: this.maxFileSize,
      publish: (name, uploadOptions, meta, body) => this.publish(name, uploadOptions, meta, body),
      hashBlob: (key) => this.hashObject(key),
      grow: (upload, total) => this.grow(upload, total),
      done: (upload) => {
        this.shared?.release(this.active.get(upload) ?? 0);
        this.active.delete(upload);
      },
    };
  }

  get quota(): number | undefined {
    return this.shared?.quota;
  }

  /** Checks the bucket is reachable, sweeps expired partials, and starts the periodic sweep. */
  static async open(location: S3Location, options: S3StoreOptions): Promise<S3Store> {
    const root = path.resolve(options.stateRoot);
    await fs.mkdir(path.join(root, RESERVED_COMPONENT), { recursive: true });
    const bucket = await Bucket.open(location);
    try {
      await bucket.check();
      const keys = new Keys(location.prefix);
      const clock = options.clock ?? systemClock;
      const partials = new S3Partials(bucket, keys, clock, options.partialTtlMs ?? DEFAULT_PARTIAL_TTL_MS);
      await partials.start(Math.min(SWEEP_EVERY_MS, options.partialTtlMs ?? SWEEP_EVERY_MS));
      const store = new S3Store(root, bucket, keys, partials, location, { ...options, clock });
      try {
        await store.shared?.start();
      } catch (error) {
        store.shared?.close();
        partials.close();
        throw error;
      }
      return store;
    } catch (error) {
      bucket.close();
      throw error;
    }
  }

  async close(): Promise<void> {
    this.partials.close();
    this.shared?.close();
    for (const upload of [...this.active.keys()]) await upload.abort(true);
    this.bucket.close();
  }

  get space(): SpaceUse {
    return this.shared?.space ?? { quota: undefined, stored: 0, partials: this.partials.heldBytes, reserved: 0 };
  }

  /** Room for an upload of undeclared size, reserved in steps as it grows. */
  private grow(upload: S3Upload, total: number): void {
    const reserved = this.active.get(upload) ?? 0;
    if (this.shared === undefined || total <= reserved) return;
    let grow = Math.max(total - reserved, RESERVE_STEP);
    try {
      this.shared.reserve(grow);
    } catch {
      grow = total - reserved; // the last room, exactly (throws QUOTA when even that is missing)
      this.shared.reserve(grow);
    }
    this.active.set(upload, reserved + grow);
  }

  private checkName(name: string): void {
    checkName(name);
    if (!this.keys.fits(name)) throw new FerryError('BAD_NAME', 'name too long for the S3 store (keys are at most 1024 bytes)');
  }

  /** The file stored as `name`, or undefined (also for objects ferry did not store). */
  private async headFile(name: string): Promise<{ head: ObjectHead; meta: FileMeta } | undefined> {
    const key = this.keys.file(name);
    const head = await this.bucket.head(key);
    if (head === undefined) return undefined;
    const meta = decodeMeta(head);
    if (meta === undefined) return undefined;
    this.metas.remember(key, head.etag, head.lastModified, meta);
    return { head, meta };
  }

  private async isFolder(name: string): Promise<boolean> {
    const page = await this.bucket.list(this.keys.folder(name), { maxKeys: 1 });
    return page.keys.length > 0;
  }

  private async missingFile(name: string): Promise<never> {
    if (await this.isFolder(name)) throw new FerryError('CONFLICT', `"${name}" is a folder`);
    throw new FerryError('NOT_FOUND', `"${name}" not found`);
  }

  private async digestOf(name: string, meta: FileMeta, algorithm: DigestAlgorithm): Promise<Buffer> {
    const known = meta.digests[algorithm];
    if (known) return known;
    return (await this.hashObject(meta.blob ?? this.keys.file(name))).digests[algorithm];
  }

  async stat(name: string, algorithm: DigestAlgorithm = 'sha256'): Promise<StoredEntry> {
    this.checkName(name);
    const found = await this.headFile(name);
    if (!found) return this.missingFile(name);
    return { name, kind: 'file', size: found.meta.size, mtimeMs: found.meta.mtimeMs, digest: await this.digestOf(name, found.meta, algorithm) };
  }

  async openRead(name: string, algorithm: DigestAlgorithm = 'sha256'): Promise<RemoteFile> {
    this.checkName(name);
    const found = await this.headFile(name);
    if (!found) return this.missingFile(name);
    const { meta, head } = found;
    // A blob never changes; a small file's own key may be replaced: read only the version opened.
    const key = meta.blob ?? this.keys.file(name);
    const etag = meta.blob === undefined ? head.etag : undefined;
    const bucket = this.bucket;
    return {
      size: meta.size,
      mtimeMs: meta.mtimeMs,
      digest: await this.digestOf(name, meta, algorithm),
      read(start: number, end: number): Readable {
        if (end < start || meta.size === 0) return Readable.from([]);
        return Readable.from(
          (async function* () {
            const body = await bucket.get(key, { start, end }, etag);
            try {
              for await (const chunk of body) yield chunk as Buffer;
            } finally {
              body.destroy();
            }
          })(),
          { objectMode: false },
        );
      },
      close: () => Promise.resolve(),
    };
  }

  /** Reads an object and hashes it in both algorithms. */
  private async hashObject(key: string): Promise<{ size: number; digests: Record<DigestAlgorithm, Buffer> }> {
    const sha256 = createHasher('sha256');
    const blake3 = createHasher('blake3');
    let size = 0;
    const body = await this.bucket.get(key);
    for await (const data of body) {
      const chunk = data as Buffer;
      sha256.update(chunk);
      blake3.update(chunk);
      size += chunk.length;
    }
    return { size, digests: { sha256: sha256.peek(), blake3: blake3.peek() } };
  }

  async exists(name: string): Promise<boolean> {
    this.checkName(name);
    if ((await this.bucket.head(this.keys.file(name))) !== undefined) return true;
    return this.isFolder(name);
  }

  async list(prefix: string, recursive: boolean, options: ListOptions = {}): Promise<StoredEntry[]> {
    const entries: StoredEntry[] = [];
    for await (const batch of this.listStream(prefix, recursive, options)) entries.push(...batch);
    return entries;
  }

  /**
   * A page of a folder (LIST with PAGE): the folder's keys are listed (names only, no HEAD)
   * from just before the page's first possible key until past every key that could sort into
   * the page (utf8Bounds: the bucket lists in UTF-8 order, a page is in ferry's), the page's
   * names kept (list-page.ts), and only the page's files read for entries. A folder of n keys
   * in pages of p costs about n / 1000 listing requests in all, not n / 1000 per page. If files
   * vanished between the listing and their HEADs and the page is short, the keys after the
   * last one kept are listed again for the rest (a short page must mean the folder's end).
   */
  async listPage(prefix: string, after: string, limit: number, options: ListOptions = {}): Promise<StoredEntry[]> {
    const folderName = normalizePrefix(prefix);
    const algorithm = options.algorithm ?? 'sha256';
    const alone = await this.listedAlone(folderName, algorithm);
    if (alone !== undefined) return alone.name > after ? [alone] : [];
    const listPrefix = this.keys.folder(folderName);
    const leavesFrom = listPrefix.length;
    const page: StoredEntry[] = [];
    for (let cursor = after; ; ) {
      const pass = new SmallestAfter<ListedFile | string>(cursor, limit - page.length);
      const startAfter = utf8Bounds.startAfter(this.keys.file(cursor));
      let listedAll = true;
      for await (const listed of this.listedPages(listPrefix, false, startAfter > listPrefix ? startAfter : undefined)) {
        for (const folder of listed.folders) pass.offer(folder, folder);
        for (const file of listed.files) pass.offer(file.name, file);
        const largest = pass.largestKept();
        if (largest !== undefined && listed.last !== undefined && Buffer.compare(Buffer.from(listed.last, 'utf8'), utf8Bounds.pastAll(this.keys.file(largest), leavesFrom)) >= 0) {
          listedAll = false; // the keys after may hold more names
          break;
        }
      }
      const result = pass.result();
      const picked = result.values;
      const more = result.more || !listedAll;
      const files = await this.entriesOf(
        picked.filter((p): p is ListedFile => typeof p !== 'string'),
        algorithm,
      );
      const folders = picked.filter((p): p is string => typeof p === 'string').map((name): StoredEntry => ({ name, kind: 'folder', size: 0, mtimeMs: 0, digest: NO_DIGEST }));
      page.push(...[...files, ...folders].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)));
      if (!more || page.length >= limit || picked.length === 0) return page;
      const last = picked[picked.length - 1]!;
      cursor = typeof last === 'string' ? last : last.name;
    }
  }

  /** The entry of a file that `folderName` names, which a listing gives alone; undefined when it names none. */
  private async listedAlone(folderName: string, algorithm: DigestAlgorithm): Promise<StoredEntry | undefined> {
    if (folderName === '') return undefined;
    this.checkName(folderName);
    const file = await this.headFile(folderName);
    if (!file) return undefined;
    return { name: folderName, kind: 'file', size: file.meta.size, mtimeMs: file.meta.mtimeMs, digest: await this.digestOf(folderName, file.meta, algorithm) };
  }

  /**
   * A listing in pages of the bucket's listing (1000 keys), each page's files read with HEADs
   * (16 at once) for their size, time and digest. Sorted within a page; pages come in key order.
   */
  async *listStream(prefix: string, recursive: boolean, options: ListOptions = {}): AsyncGenerator<StoredEntry[]> {
    const folderName = normalizePrefix(prefix);
    const algorithm = options.algorithm ?? 'sha256';
    const alone = await this.listedAlone(folderName, algorithm);
    if (alone !== undefined) {
      yield [alone];
      return;
    }
    let first = true;
    for await (const listed of this.listedPages(this.keys.folder(folderName), recursive)) {
      if (first && folderName !== '' && listed.empty) {
        if (options.missing === 'error') throw new FerryError('NOT_FOUND', `no folder named "${folderName}"`);
        return;
      }
      first = false;
      const batch: StoredEntry[] = listed.folders.map((name): StoredEntry => ({ name, kind: 'folder', size: 0, mtimeMs: 0, digest: NO_DIGEST }));
      batch.push(...(await this.entriesOf(listed.files, algorithm)));
      batch.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      if (batch.length > 0) yield batch;
    }
  }

  /**
   * The bucket's listing under `listPrefix`, a page (1000 keys) at a time, as the names ferry
   * lists: folders (common prefixes, without `recursive`) and files, the server's own keys and
   * folder markers left out. `empty`: the bucket's page had no key or prefix at all; `last`:
   * the page's last key or prefix, where the listing stands. From the first key after
   * `startAfter`, if given.
   */
  private async *listedPages(listPrefix: string, recursive: boolean, startAfter?: string): AsyncGenerator<{ folders: string[]; files: ListedFile[]; empty: boolean; last: string | undefined }> {
    let token: string | undefined;
    for (;;) {
      const page = await this.bucket.list(listPrefix, { delimiter: !recursive, token, startAfter });
      const folders: string[] = [];
      for (const folder of page.prefixes) {
        const name = this.keys.nameOf(folder).slice(0, -1);
        if (nameProblem(name) === undefined) folders.push(name);
      }
      const files: ListedFile[] = [];
      let skipInternal = false;
      for (const listed of page.keys) {
        if (listed.key.endsWith('/')) continue; // a folder's marker
        if (listed.key.startsWith(this.keys.internal)) {
          skipInternal = true;
          continue;
        }
        const name = this.keys.nameOf(listed.key);
        if (nameProblem(name) === undefined) files.push({ ...listed, name });
      }
      const lastKey = page.keys[page.keys.length - 1]?.key;
      const lastPrefix = page.prefixes[page.prefixes.length - 1];
      const last = lastKey === undefined ? lastPrefix : lastPrefix === undefined ? lastKey : Buffer.compare(Buffer.from(lastKey), Buffer.from(lastPrefix)) > 0 ? lastKey : lastPrefix;
      yield { folders, files, empty: page.keys.length === 0 && page.prefixes.length === 0, last };
      if (page.next === undefined) return;
      const pastInternal = `${this.keys.internal.slice(0, -1)}0`; // '0' sorts right after '/'
      if (skipInternal && page.keys[page.keys.length - 1]!.key < pastInternal) {
        // The server's own keys sort together: list on from just past them.
        token = undefined;
        startAfter = pastInternal;
      } else {
        token = page.next;
        startAfter = undefined;
      }
    }
  }

  /** The listed files' entries: from metadata this server knows for the listed version, else a HEAD each. */
  private async entriesOf(files: ListedFile[], algorithm: DigestAlgorithm): Promise<StoredEntry[]> {
    const entries: (StoredEntry | undefined)[] = new Array(files.length);
    const unknown: number[] = [];
    for (const [index, file] of files.entries()) {
      const meta = this.metas.lookup(file.key, file);
      const digest = meta?.digests[algorithm];
      if (meta !== undefined && digest !== undefined) entries[index] = { name: file.name, kind: 'file', size: meta.size, mtimeMs: meta.mtimeMs, digest };
      else unknown.push(index);
    }
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < unknown.length) {
        const index = unknown[next++]!;
        const name = files[index]!.name;
        const found = await this.listHeads.run(() => this.headFile(name));
        if (found) entries[index] = { name, kind: 'file', size: found.meta.size, mtimeMs: found.meta.mtimeMs, digest: await this.digestOf(name, found.meta, algorithm) };
      }
    };
    await Promise.all(Array.from({ length: Math.min(HEAD_CONCURRENCY, unknown.length) }, worker));
    return entries.filter((e): e is StoredEntry => e !== undefined);
  }

  /**
   * GET_BATCH's read: each file with one GET, whose answer carries the metadata a HEAD would
   * (a file sent in parts: its manifest, then its blob). A file the GET finds no digest of
   * in this algorithm is left to the caller (undefined).
   */
  async readSmallFiles(names: string[], algorithm: DigestAlgorithm, maxBytes: number): Promise<(SmallOutcome | undefined)[]> {
    const out: (SmallOutcome | undefined)[] = new Array(names.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < names.length) {
        const index = next++;
        out[index] = await this.reads.run(() => this.readSmall(names[index]!, algorithm, maxBytes)).catch((error: unknown) => ({ error }));
      }
    };
    await Promise.all(Array.from({ length: Math.min(HEAD_CONCURRENCY, names.length) }, worker));
    return out;
  }

  private async readSmall(name: string, algorithm: DigestAlgorithm, maxBytes: number): Promise<SmallOutcome | undefined> {
    this.checkName(name);
    const key = this.keys.file(name);
    let read;
    try {
      read = await this.bucket.read(key);
    } catch (error) {
      if (error instanceof FerryError && error.code === 'NOT_FOUND') return this.missingFile(name);
      throw error;
    }
    const { head, body } = read;
    const meta = decodeMeta(head);
    const digest = meta?.digests[algorithm];
    if (meta === undefined || digest === undefined || meta.size > maxBytes) {
      body.destroy();
      if (meta === undefined) return this.missingFile(name);
      return digest === undefined ? undefined : { read: { status: 'large', size: meta.size } };
    }
    this.metas.remember(key, head.etag, head.lastModified, meta);
    let data: Buffer;
    if (meta.blob === undefined) {
      data = await readAtMost(body, meta.size);
    } else {
      await readAtMost(body, 0); // a manifest's empty body, read to its end: the connection stays open
      data = await readAtMost(await this.bucket.get(meta.blob), meta.size);
    }
    return { read: verifiedRead(data, { size: meta.size, mtimeMs: meta.mtimeMs, digest }, algorithm) };
  }

  async checkUpload(name: string, options: UploadOptions): Promise<void> {
    this.checkName(name);
    if (options.size !== undefined && options.size > this.maxFileSize) {
      throw new FerryError('TOO_LARGE', `${options.size} bytes is over the server's limit of ${this.maxFileSize}`);
    }
    // All the lookups at once (one round trip, not one per lookup): the name as a file and as a
    // folder, and each folder on the way, which must not be a file ("a/b" where "a" is a file).
    const parts = name.split('/');
    const parents = parts.slice(0, -1).map((_, depth) => parts.slice(0, depth + 1).join('/'));
    const noClobber = !options.overwrite && !options.rename;
    const [file, folder, parentFiles] = await Promise.all([
      noClobber ? this.bucket.head(this.keys.file(name)) : undefined,
      noClobber ? this.isFolder(name) : false,
      Promise.all(parents.map((parent) => this.bucket.head(this.keys.file(parent)))),
    ]);
    if (file !== undefined || folder) throw new FerryError('EXISTS', `"${name}" already exists`);
    const blocking = parentFiles.findIndex((head) => head !== undefined);
    if (blocking >= 0) throw new FerryError('CONFLICT', `"${parents[blocking]}" is a file`);
  }

  /**
   * The checks of a name its conditional PUT does not make (that PUT refuses an existing file):
   * no folder of that name (unless overwriting or renaming), no file on its way. From `place`
   * when a batch's survey found it, else asked (one LIST and a HEAD per folder, at once).
   */
  private async checkPlace(name: string, options: UploadOptions, place: NamePlace | undefined): Promise<void> {
    const noClobber = !options.overwrite && !options.rename;
    if (place === undefined) {
      const parents = parentsOf(name);
      const [folder, heads] = await Promise.all([noClobber ? this.isFolder(name) : false, Promise.all(parents.map((parent) => this.bucket.head(this.keys.file(parent))))]);
      place = { folder, fileOnTheWay: parents[heads.findIndex((head) => head !== undefined)] };
    }
    if (noClobber && place.folder) throw new FerryError('EXISTS', `"${name}" already exists`);
    if (place.fileOnTheWay !== undefined) throw new FerryError('CONFLICT', `"${place.fileOnTheWay}" is a file`);
  }

  /**
   * Each file through its own upload (see storeEachFile): S3 has no batched write. What the
   * files share is asked once for the batch (see survey): per file, only its PutObject is left.
   */
  async storeBatch(files: BatchFile[], options: BatchOptions = {}): Promise<BatchOutcome[]> {
    const survey = await this.survey(files.map((f) => f.name));
    return storeEachFile(this, files, options, {
      stored: (name, algorithm) => this.storedAs(name, algorithm, survey.listed(name)),
      begin: (name, uploadOptions) => this.begin(name, { ...uploadOptions, place: survey.place(name) }),
    });
  }

  /**
   * What one batch's names need to know, asked once: each folder on their way, whether it is a
   * file (a HEAD each), and per folder holding names, one page of its listing from just before
   * its first name (which of the names are files or folders already). A name the page does not
   * reach, or a question the store failed to answer, is asked again file by file. Like the
   * checks it replaces, it races with other writers (the conditional PUT is what keeps no-clobber).
   */
  private async survey(names: string[]): Promise<BatchSurvey> {
    const valid = names.filter((name) => nameProblem(name) === undefined && this.keys.fits(name));
    const ancestors = new Set<string>();
    const byFolder = new Map<string, string[]>();
    for (const name of valid) {
      for (const parent of parentsOf(name)) ancestors.add(parent);
      const folder = name.includes('/') ? name.slice(0, name.lastIndexOf('/')) : '';
      byFolder.set(folder, [...(byFolder.get(folder) ?? []), name]);
    }
    const fileParents = new Set<string>();
    const unknownParents = new Set<string>();
    await eachAtOnce([...ancestors], HEAD_CONCURRENCY, async (parent) => {
      const head = await this.bucket.head(this.keys.file(parent)).catch(() => null);
      if (head === null) unknownParents.add(parent);
      else if (head !== undefined) fileParents.add(parent);
    });
    const listed = new Map<string, ListedFile | null>();
    const folders = new Set<string>();
    const covered = new Set<string>();
    await eachAtOnce([...byFolder], HEAD_CONCURRENCY, async ([folder, inFolder]) => {
      const sorted = inFolder.map((name) => this.keys.file(name)).sort(compareKeys);
      const first = sorted[0]!;
      const page = await this.bucket.list(this.keys.folder(folder), { delimiter: true, startAfter: [...first].slice(0, -1).join(''), maxKeys: SURVEY_PAGE }).catch(() => undefined);
      if (page === undefined) return;
      const last = [...page.keys.map((k) => k.key), ...page.prefixes].sort(compareKeys).pop();
      for (const key of sorted) {
        if (page.next !== undefined && (last === undefined || compareKeys(`${key}/`, last) > 0)) continue;
        const name = this.keys.nameOf(key);
        covered.add(name);
        listed.set(name, null);
      }
      for (const k of page.keys) {
        const name = this.keys.nameOf(k.key);
        if (covered.has(name)) listed.set(name, { ...k, name });
      }
      for (const prefix of page.prefixes) folders.add(this.keys.nameOf(prefix).slice(0, -1));
    });
    return {
      listed: (name) => (covered.has(name) ? (listed.get(name) ?? null) : undefined),
      place: (name) => {
        const parents = parentsOf(name);
        if (!covered.has(name) || parents.some((p) => unknownParents.has(p))) return undefined;
        return { folder: folders.has(name), fileOnTheWay: parents.find((p) => fileParents.has(p)) };
      },
    };
  }

  /**
   * The stored file `name` (for skipIdentical), from what a survey listed when it did: no
   * request when the name was not there, none when this server knows the listed version.
   */
  private async storedAs(name: string, algorithm: DigestAlgorithm, listed: ListedFile | null | undefined): Promise<StoredEntry | undefined> {
    if (listed === null) return undefined;
    const meta = listed !== undefined ? this.metas.lookup(listed.key, listed) : undefined;
    const found = meta ?? (await this.headFile(name))?.meta;
    if (found === undefined) return undefined;
    return { name, kind: 'file', size: found.size, mtimeMs: found.mtimeMs, digest: await this.digestOf(name, found, algorithm) };
  }

  beginUpload(name: string, options: UploadOptions = {}): Promise<S3Upload> {
    return this.begin(name, options);
  }

  private async begin(name: string, options: S3UploadOptions): Promise<S3Upload> {
    // A file of one part is checked when it is committed, not now: the protocol reads nothing
    // more of a connection until its PUT is set up, so a lookup here would cost every small
    // file of a pipelined batch one round trip to the store, in turn. The conditional PUT keeps
    // no-clobber either way; only the refusal comes after the (small) body.
    const oneShot = options.size !== undefined && options.size <= this.uploadContext.partSize && !options.resume;
    // Refused before any request when it cannot fit (a kept partial it may continue counts as its own).
    if (options.size !== undefined) this.shared?.check(options.size - this.partials.sizeOf(name, options.size));
    if (oneShot) {
      this.checkName(name);
      if (options.size! > this.maxFileSize) throw new FerryError('TOO_LARGE', `${options.size} bytes is over the server's limit of ${this.maxFileSize}`);
    } else {
      await this.checkUpload(name, options);
    }
    let resumed;
    if (options.size !== undefined && options.resume) {
      const record = await this.partials.read(name, options.size);
      if (record && record.algorithm === (options.algorithm ?? 'sha256')) resumed = record;
      else if (record) await this.partials.discard(name, options.size);
    } else if (options.size !== undefined && options.size > this.uploadContext.partSize) {
      // A fresh start replaces a partial kept by any server (only files of several parts have one).
      await this.partials.discard(name, options.size);
    }
    const upload = new S3Upload(this.uploadContext, name, oneShot ? { ...options, checkAtCommit: true } : options, resumed);
    // In one step: once active, the partial it continues is no longer counted apart.
    this.active.set(upload, 0);
    if (this.shared !== undefined && options.size !== undefined) {
      try {
        this.shared.reserve(options.size);
      } catch (error) {
        await upload.abort(true); // a resumed partial stays kept
        throw error;
      }
      this.active.set(upload, options.size);
    }
    return upload;
  }

  async probeUpload(name: string, size: number, algorithm: DigestAlgorithm = 'sha256'): Promise<{ offset: number; digest: Buffer }> {
    this.checkName(name);
    const record = await this.partials.read(name, size);
    if (!record || record.algorithm !== algorithm || record.parts.length === 0) return { offset: 0, digest: createHasher(algorithm).peek() };
    return { offset: Math.min(size, record.parts.length * record.partSize), digest: Buffer.from(record.prefixDigest, 'hex') };
  }

  async hashPrefix(name: string, length: number, algorithm: DigestAlgorithm = 'sha256'): Promise<{ offset: number; digest: Buffer }> {
    const opened = await this.openRead(name, algorithm);
    const offset = Math.min(length, opened.size);
    if (offset === opened.size) return { offset, digest: opened.digest };
    const hasher = createHasher(algorithm);
    if (offset > 0) for await (const chunk of opened.read(0, offset - 1, 256 * 1024)) hasher.update(chunk as Buffer);
    return { offset, digest: hasher.peek() };
  }

  /**
   * Makes a verified file visible under `name`: its data (small files) or a manifest naming
   * its blob, written with If-None-Match: * unless overwriting; with `rename`, the first free
   * "name (n).ext". A replaced file's blob is deleted after.
   */
  private async publish(name: string, options: S3UploadOptions, meta: FileMeta, body: Buffer | undefined): Promise<StoredEntry> {
    if (options.checkAtCommit) await this.checkPlace(name, options, options.place);
    const metadata = encodeMeta(meta);
    const content = body ?? Buffer.alloc(0);
    const renaming = options.rename === true && !options.overwrite;
    const candidates = renaming ? renameCandidates(name) : [name];
    for (const candidate of candidates) {
      if (candidate !== name && (nameProblem(candidate) !== undefined || !this.keys.fits(candidate))) continue;
      const [replaced, isFolder] = options.overwrite ? await Promise.all([this.headFile(candidate), this.isFolder(candidate)]) : [undefined, false];
      if (isFolder) throw new FerryError('CONFLICT', `"${candidate}" is a folder`);
      const key = this.keys.file(candidate);
      try {
        const etag = await this.bucket.put(key, content, { metadata, ifNoneMatch: !options.overwrite });
        this.metas.remember(key, etag, undefined, meta);
      } catch (error) {
        if (error instanceof FerryError && error.code === 'EXISTS' && renaming) continue;
        if (error instanceof FerryError && error.code === 'EXISTS') throw new FerryError('EXISTS', `"${candidate}" already exists`);
        throw error;
      }
      this.shared?.storedChanged(meta.size - (replaced?.meta.size ?? 0));
      if (replaced?.meta.blob !== undefined && replaced.meta.blob !== meta.blob) await this.bucket.delete(replaced.meta.blob).catch(() => undefined);
      const algorithm = options.algorithm ?? 'sha256';
      return { name: candidate, kind: 'file', size: meta.size, mtimeMs: meta.mtimeMs, digest: meta.digests[algorithm]! };
    }
    throw new FerryError('EXISTS', `no free name like "${name}"`);
  }

  async remove(name: string): Promise<void> {
    this.checkName(name);
    const head = await this.bucket.head(this.keys.file(name));
    if (head === undefined) {
      if (await this.isFolder(name)) throw new FerryError('CONFLICT', `"${name}" is a folder (remove it recursively)`);
      throw new FerryError('NOT_FOUND', `"${name}" not found`);
    }
    await this.bucket.delete(this.keys.file(name));
    this.metas.forget(this.keys.file(name));
    this.shared?.storedChanged(-(decodeMeta(head)?.size ?? head.size));
    const blob = decodeMeta(head)?.blob;
    if (blob !== undefined) await this.bucket.delete(blob).catch(() => undefined);
  }

  async removeTree(prefix: string): Promise<number> {
    const folderName = normalizePrefix(prefix);
    this.checkName(folderName);
    const listPrefix = this.keys.folder(folderName);
    let files = 0;
    let found = false;
    let token: string | undefined;
    do {
      const page = await this.bucket.list(listPrefix, { token });
      found ||= page.keys.length > 0;
      // Empty objects may be manifests: their blobs go too (a blob's data is never empty).
      const blobs: string[] = [];
      let freed = 0;
      await Promise.all(
        page.keys
          .filter((k) => k.size === 0 && !k.key.endsWith('/'))
          .map(async (k) => {
            const head = await this.bucket.head(k.key);
            const meta = head && decodeMeta(head);
            if (meta?.blob !== undefined) {
              blobs.push(meta.blob);
              freed += meta.size;
            }
          }),
      );
      for (const k of page.keys) freed += k.size;
      files += page.keys.filter((k) => !k.key.endsWith('/')).length;
      await this.bucket.deleteMany(page.keys.map((k) => k.key));
      await this.bucket.deleteMany(blobs);
      this.shared?.storedChanged(-freed);
      token = page.next;
    } while (token !== undefined);
    if (!found) {
      if (await this.headFile(folderName)) throw new FerryError('CONFLICT', `"${folderName}" is a file`);
      throw new FerryError('NOT_FOUND', `no folder named "${folderName}"`);
    }
    return files;
  }

  /**
   * Renames a small file (copied, then the old key deleted). A large file's or a folder's
   * rename would copy every byte: refused.
   */
  async rename(from: string, to: string, options: { overwrite?: boolean } = {}): Promise<{ kind: 'file' | 'folder' }> {
    this.checkName(from);
    this.checkName(to);
    if (from === to) throw new FerryError('CONFLICT', `"${from}" cannot be moved onto itself`);
    if (to.startsWith(`${from}/`)) throw new FerryError('CONFLICT', `"${from}" cannot be moved into itself`);
    const found = await this.headFile(from);
    if (!found) {
      if (await this.isFolder(from)) throw new FerryError('UNSUPPORTED', 'moving folders is not supported on the S3 store');
      throw new FerryError('NOT_FOUND', `"${from}" not found`);
    }
    if (found.meta.blob !== undefined) throw new FerryError('UNSUPPORTED', 'moving files sent in parts is not supported on the S3 store');
    if (await this.isFolder(to)) throw new FerryError('CONFLICT', `"${to}" cannot be replaced: only a file replaces a file`);
    const chunks: Buffer[] = [];
    for await (const chunk of await this.bucket.get(this.keys.file(from), undefined, found.head.etag)) chunks.push(chunk as Buffer);
    await this.publish(to, { overwrite: options.overwrite }, found.meta, Buffer.concat(chunks));
    await this.bucket.delete(this.keys.file(from));
    this.shared?.storedChanged(-found.meta.size);
    return { kind: 'file' };
  }

  async makeFolder(name: string): Promise<boolean> {
    this.checkName(name);
    if (await this.headFile(name)) throw new FerryError('CONFLICT', `"${name}" is a file`);
    if (await this.isFolder(name)) return false;
    try {
      await this.bucket.put(this.keys.folder(name), Buffer.alloc(0), { ifNoneMatch: true });
      return true;
    } catch (error) {
      if (error instanceof FerryError && error.code === 'EXISTS') return false;
      throw error;
    }
  }
}

/** Keys per page of a batch's survey listing (S3's most). */
const SURVEY_PAGE = 1000;

/** What a batch's survey found, per name: undefined where it does not know. */
interface BatchSurvey {
  /** The name as listed, null when the listing showed no such file. */
  listed(name: string): ListedFile | null | undefined;
  place(name: string): NamePlace | undefined;
}

/** The folders on the way to `name`: "a", "a/b" for "a/b/c". */
function parentsOf(name: string): string[] {
  const parts = name.split('/');
  return parts.slice(0, -1).map((_, depth) => parts.slice(0, depth + 1).join('/'));
}

/** S3's key order: by UTF-8 bytes (JavaScript compares UTF-16 units, which differ above U+FFFF). */
function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** `work` on each item, at most `window` at once. */
async function eachAtOnce<T>(items: T[], window: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(window, items.length) }, lane));
}

/** A file as a page of the bucket's listing shows it. */
interface ListedFile {
  name: string;
  key: string;
  etag: string;
  size: number;
  lastModified: number;
}

/** A body's bytes, at most `limit` + 1 of them (more than expected is caught by the size check). */
async function readAtMost(body: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const data of body) {
      const chunk = data as Buffer;
      chunks.push(chunk);
      total += chunk.length;
      if (total > limit) break;
    }
  } finally {
    body.destroy();
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
}

function* renameCandidates(name: string): Generator<string> {
  yield name;
  const slash = name.lastIndexOf('/');
  const leaf = name.slice(slash + 1);
  const dot = leaf.lastIndexOf('.');
  const stem = dot > 0 ? leaf.slice(0, dot) : leaf;
  const ext = dot > 0 ? leaf.slice(dot) : '';
  for (let n = 1; n < 10_000; n++) yield `${name.slice(0, slash + 1)}${stem} (${n})${ext}`;
}
