import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock, Timer } from '../clock.js';
import { FerryError } from '../errors.js';
import { nameProblem } from '../protocol/names.js';
import type { StoreUpload as Upload } from '../storage/backend.js';
import { receiveBody } from './body.js';
import { expectsContinue, header, type DoorContext } from './context.js';
import { etagOf, reprDigest } from './digest.js';
import { withStatus } from './respond.js';
import { INTERNAL_PREFIX } from './target.js';

/**
 * Resumable uploads: tus 1.0.0 (https://tus.io/protocols/resumable-upload) with the creation
 * and termination extensions, at `/.ferry/tus/`. tus rather than the IETF draft: it is a
 * finished, stable protocol with a maintained reference client for browsers and Node
 * (tus-js-client, which the page bundles) and many others (Uppy, curl scripts, Go, Python),
 * while the draft's headers and status codes still change between revisions.
 *
 * The whole-file digest travels in `Upload-Metadata` (`sha256`, hex or base64) and is checked
 * at the end like any upload (a mismatch stores nothing, 422); `name` (or `filename`) is the
 * stored name and `overwrite` = `1` replaces an existing file.
 *
 * Bytes go through ferry's own upload path: a PATCH writes into a store Upload kept open
 * between PATCHes; a session left alone for the idle timeout (or pushed out by newer ones)
 * is parked in the store's partial uploads, keyed by name and size like a protocol resume —
 * so `--max-partials`, `--max-partial-bytes`, `--partial-ttl` and the quota apply, and an
 * upload survives a restart. The upload URL encodes the name, size, digest and overwrite
 * flag, so it stays valid across restarts with no table to keep.
 */

export const TUS_PATH = 'tus';
const TUS_VERSION = '1.0.0';
const CHUNK_TYPE = 'application/offset+octet-stream';
/** Uploads held open between PATCHes at once; beyond this the least recently used is parked. */
const MAX_OPEN_SESSIONS = 64;
/** Finished uploads remembered so a late HEAD still learns "complete". */
const MAX_FINISHED = 1000;

interface UploadSpec {
  name: string;
  size: number;
  /** sha256 the whole file must have, when the client gave one. */
  sha256?: Buffer;
  overwrite: boolean;
}

interface Session {
  id: string;
  spec: UploadSpec;
  upload: Upload | undefined;
  busy: boolean;
  hold: Timer | undefined;
  lastUsed: number;
}

export class TusEndpoint {
  private readonly sessions = new Map<string, Session>();
  private readonly finished = new Map<string, number>();
  private readonly clock: Clock;

  constructor(
    private readonly ctx: DoorContext,
    private readonly holdMs: number,
  ) {
    this.clock = ctx.clock;
  }

  /** `rest`: what follows `/.ferry/tus/` ('' for the creation endpoint). */
  async handle(req: IncomingMessage, res: ServerResponse, rest: string): Promise<void> {
    res.setHeader('Tus-Resumable', TUS_VERSION);
    const method = header(req, 'x-http-method-override')?.toUpperCase() ?? req.method;
    if (method === 'OPTIONS') {
      res.writeHead(204, {
        'Tus-Version': TUS_VERSION,
        'Tus-Extension': 'creation,termination',
        ...(Number.isSafeInteger(this.ctx.store.maxFileSize) ? { 'Tus-Max-Size': String(this.ctx.store.maxFileSize) } : {}),
      });
      res.end();
      return;
    }
    if (req.headers['tus-resumable'] !== TUS_VERSION) {
      res.setHeader('Tus-Version', TUS_VERSION);
      throw withStatus(new FerryError('UNSUPPORTED', `tus ${TUS_VERSION} is the version spoken here (Tus-Resumable header)`), 412);
    }
    await this.ctx.access.check(req, 'write');
    const id = rest.split('?')[0]!;
    if (id === '') {
      if (method !== 'POST') throw new FerryError('UNSUPPORTED', 'create a tus upload with POST');
      return this.create(req, res);
    }
    const spec = decodeId(id);
    switch (method) {
      case 'HEAD':
        return this.head(res, id, spec);
      case 'PATCH':
        return this.patch(req, res, id, spec);
      case 'DELETE':
        return this.terminate(res, id, spec);
      default:
        throw new FerryError('UNSUPPORTED', `${method} is not part of tus here`);
    }
  }

  private async create(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.headers['upload-defer-length'] !== undefined) throw new FerryError('UNSUPPORTED', 'Upload-Defer-Length is not supported: give Upload-Length');
    const length = header(req, 'upload-length');
    if (length === undefined || !/^\d{1,16}$/.test(length) || !Number.isSafeInteger(Number(length))) {
      throw new FerryError('PROTOCOL', 'tus creation needs Upload-Length (bytes)');
    }
    const metadata = parseMetadata(header(req, 'upload-metadata'));
    const name = metadata.get('name') ?? metadata.get('filename');
    if (name === undefined) throw new FerryError('BAD_NAME', 'bad name: give the stored name in Upload-Metadata "name"');
    const problem = nameProblem(name);
    if (problem !== undefined) throw new FerryError('BAD_NAME', `bad name: ${problem}`);
    const spec: UploadSpec = { name, size: Number(length), sha256: parseSha256(metadata.get('sha256')), overwrite: metadata.get('overwrite') === '1' };
    await this.ctx.store.checkUpload(name, { size: spec.size, overwrite: spec.overwrite });
    const id = encodeId(spec);
    // A creation is a fresh start: what an earlier upload of this name and size left goes.
    await this.dropSession(id, false);
    await this.ctx.store.partials.discard(name, spec.size);
    this.finished.delete(id);
    res.writeHead(201, { Location: `${INTERNAL_PREFIX}${TUS_PATH}/${id}`, 'Content-Length': 0 });
    res.end();
  }

  private head(res: ServerResponse, id: string, spec: UploadSpec): void {
    const finished = this.finished.get(id);
    const session = this.sessions.get(id);
    const offset = finished ?? (session?.upload ? uploaded(session.upload) : this.ctx.store.partials.sizeOf(spec.name, spec.size));
    res.writeHead(200, { 'Upload-Offset': String(offset), 'Upload-Length': String(spec.size), 'Cache-Control': 'no-store', 'Content-Length': 0 });
    res.end();
  }

  private async patch(req: IncomingMessage, res: ServerResponse, id: string, spec: UploadSpec): Promise<void> {
    if (req.headers['content-type'] !== CHUNK_TYPE) throw withStatus(new FerryError('PROTOCOL', `a tus PATCH body is ${CHUNK_TYPE}`), 415);
    const claimed = header(req, 'upload-offset');
    if (claimed === undefined || !/^\d{1,16}$/.test(claimed)) throw new FerryError('PROTOCOL', 'a tus PATCH needs Upload-Offset');
    if (this.finished.has(id)) throw withStatus(new FerryError('CONFLICT', 'this upload is already complete'), 409);
    const session = await this.session(id, spec);
    if (session.busy) throw withStatus(new FerryError('BUSY', 'another request is writing this upload'), 423);
    session.busy = true;
    session.hold?.cancel();
    session.hold = undefined;
    try {
      session.upload ??= await this.ctx.store.beginUpload(spec.name, { size: spec.size, resume: true, overwrite: spec.overwrite });
      const upload = session.upload;
      const offset = uploaded(upload);
      if (Number(claimed) !== offset) {
        throw withStatus(new FerryError('CONFLICT', `Upload-Offset ${claimed} is not where this upload is (${offset})`), 409);
      }
      if (expectsContinue(req)) res.writeContinue();
      try {
        await receiveBody(req, upload, this.ctx.watchOf(req));
      } catch (error) {
        // The client went away: the bytes received stay, for its next PATCH after a HEAD.
        if (error instanceof FerryError && error.code === 'CONNECTION') return;
        await this.dropSession(id, false);
        throw error;
      }
      if (uploaded(upload) < spec.size) {
        res.writeHead(204, { 'Upload-Offset': String(uploaded(upload)) });
        res.end();
        return;
      }
      this.sessions.delete(id);
      session.upload = undefined;
      const entry = await upload.commit({ size: spec.size, digest: spec.sha256 });
      this.remember(id, spec.size);
      this.ctx.log.info({ peer: req.socket.remoteAddress, name: entry.name, size: entry.size, sha256: entry.digest.toString('hex') }, 'http resumable upload stored');
      res.writeHead(204, { 'Upload-Offset': String(entry.size), ETag: etagOf(entry), 'Repr-Digest': reprDigest(entry) });
      res.end();
    } finally {
      session.busy = false;
      session.lastUsed = this.clock.now();
      if (this.sessions.get(id) === session) this.armHold(session);
    }
  }

  private async terminate(res: ServerResponse, id: string, spec: UploadSpec): Promise<void> {
    await this.dropSession(id, false);
    await this.ctx.store.partials.discard(spec.name, spec.size);
    this.finished.delete(id);
    res.writeHead(204);
    res.end();
  }

  private async session(id: string, spec: UploadSpec): Promise<Session> {
    const existing = this.sessions.get(id);
    if (existing) return existing;
    if (this.sessions.size >= MAX_OPEN_SESSIONS) {
      let oldest: Session | undefined;
      for (const s of this.sessions.values()) if (!s.busy && (!oldest || s.lastUsed < oldest.lastUsed)) oldest = s;
      if (!oldest) throw new FerryError('BUSY', 'too many resumable uploads in progress: try again shortly');
      await this.dropSession(oldest.id, true);
    }
    const session: Session = { id, spec, upload: undefined, busy: false, hold: undefined, lastUsed: this.clock.now() };
    this.sessions.set(id, session);
    return session;
  }

  /** After the idle time without a PATCH, the open upload is parked among the store's partials. */
  private armHold(session: Session): void {
    session.hold?.cancel();
    session.hold = this.clock.setTimer(this.holdMs, () => {
      session.hold = undefined;
      if (!session.busy && this.sessions.get(session.id) === session) void this.dropSession(session.id, true);
    });
  }

  /** Ends a session: its bytes kept as a partial (`keep`) or removed. */
  private async dropSession(id: string, keep: boolean): Promise<void> {
    const session = this.sessions.get(id);
    if (!session) return;
    this.sessions.delete(id);
    session.hold?.cancel();
    const upload = session.upload;
    session.upload = undefined;
    await upload?.abort(keep).catch((error: unknown) => this.ctx.log.warn({ name: session.spec.name, reason: String(error) }, 'cannot keep a resumable upload'));
  }

  private remember(id: string, size: number): void {
    if (this.finished.size >= MAX_FINISHED) this.finished.delete(this.finished.keys().next().value!);
    this.finished.set(id, size);
  }

  /** Parks every open upload among the partials (the server is stopping). */
  async close(): Promise<void> {
    await Promise.all([...this.sessions.keys()].map((id) => this.dropSession(id, true)));
  }
}

function uploaded(upload: Upload): number {
  return upload.offset + upload.sink.bytes;
}

/** `key base64,key base64,key` (tus creation) → values decoded as UTF-8. */
function parseMetadata(header: string | undefined): Map<string, string> {
  const result = new Map<string, string>();
  if (header === undefined || header.trim() === '') return result;
  for (const pair of header.split(',')) {
    const [key, value, extra] = pair.trim().split(' ');
    if (!key || extra !== undefined || (value !== undefined && !/^[A-Za-z0-9+/]*={0,2}$/.test(value))) {
      throw new FerryError('PROTOCOL', 'malformed Upload-Metadata');
    }
    result.set(key, value === undefined ? '' : Buffer.from(value, 'base64').toString('utf8'));
  }
  return result;
}

function parseSha256(text: string | undefined): Buffer | undefined {
  if (text === undefined || text === '') return undefined;
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length === 32 && /^[A-Za-z0-9+/_-]{43}=?$/.test(text)) return bytes;
  throw new FerryError('PROTOCOL', 'Upload-Metadata sha256 must be 64 hex digits or 32 bytes in base64');
}

/** The upload URL's last segment: everything the upload needs, so it outlives a restart. */
function encodeId(spec: UploadSpec): string {
  const body = { n: spec.name, s: spec.size, ...(spec.sha256 ? { d: spec.sha256.toString('hex') } : {}), ...(spec.overwrite ? { o: 1 } : {}) };
  return Buffer.from(JSON.stringify(body), 'utf8').toString('base64url');
}

function decodeId(id: string): UploadSpec {
  const unknown = (): never => {
    throw new FerryError('NOT_FOUND', 'no such tus upload');
  };
  if (!/^[A-Za-z0-9_-]+$/.test(id)) return unknown();
  let body: { n?: unknown; s?: unknown; d?: unknown; o?: unknown };
  try {
    body = JSON.parse(Buffer.from(id, 'base64url').toString('utf8')) as typeof body;
  } catch {
    return unknown();
  }
  if (typeof body.n !== 'string' || nameProblem(body.n) !== undefined || typeof body.s !== 'number' || !Number.isSafeInteger(body.s) || body.s < 0) return unknown();
  if (body.d !== undefined && (typeof body.d !== 'string' || !/^[0-9a-f]{64}$/.test(body.d))) return unknown();
  return { name: body.n, size: body.s, sha256: typeof body.d === 'string' ? Buffer.from(body.d, 'hex') : undefined, overwrite: body.o === 1 };
}
