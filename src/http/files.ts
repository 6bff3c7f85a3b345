import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import parseRange from 'range-parser';
import { closeFile, readRange, type StoreBackend } from '../storage/backend.js';
import { attachment, contentTypeOf } from './content-type.js';
import { header } from './context.js';
import { etagOf, reprDigest } from './digest.js';

/** Bytes read from disk per chunk of a download (the socket's backpressure paces the reads). */
const READ_CHUNK = 256 * 1024;

/**
 * Stored files are shown from this site's origin, so they are sandboxed: a stored page or
 * image cannot run script here or read the page's token.
 */
const FILE_POLICY = "default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; sandbox";

interface Validators {
  etag: string;
  /** Last-Modified, in whole seconds (HTTP dates have no finer grain). */
  modifiedSec: number;
}

/**
 * GET/HEAD of a stored file: conditional requests (RFC 9110 §13, evaluated in its order),
 * one byte range (RFC 9110 §14; several ranges are answered with the first, after
 * overlapping ones are merged), `ETag` and `Repr-Digest` from the stored digest. The file is
 * read from the version opened, even if it is replaced meanwhile.
 */
export async function serveFile(req: IncomingMessage, res: ServerResponse, store: StoreBackend, name: string, download: boolean): Promise<void> {
  const opened = await store.openRead(name);
  let handed = false;
  try {
    const validators: Validators = { etag: etagOf(opened), modifiedSec: Math.floor(opened.mtimeMs / 1000) };
    const headers: Record<string, string | number> = {
      ETag: validators.etag,
      'Last-Modified': new Date(validators.modifiedSec * 1000).toUTCString(),
      'Repr-Digest': reprDigest(opened),
      'Accept-Ranges': 'bytes',
      'Cache-Control': 'no-cache',
      'X-Content-Type-Options': 'nosniff',
      'Content-Security-Policy': FILE_POLICY,
    };
    const precondition = evaluateConditions(req, validators);
    if (precondition !== undefined) {
      res.writeHead(precondition, headers);
      res.end();
      return;
    }
    headers['Content-Type'] = contentTypeOf(name);
    if (download) headers['Content-Disposition'] = attachment(name.slice(name.lastIndexOf('/') + 1));
    let start = 0;
    let end = opened.size - 1;
    let status = 200;
    const range = req.headers.range;
    if (range !== undefined && rangeApplies(req, validators)) {
      const ranges = parseRange(opened.size, range, { combine: true });
      if (ranges === -1) {
        res.writeHead(416, { ...headers, 'Content-Range': `bytes */${opened.size}`, 'Content-Length': 0 });
        res.end();
        return;
      }
      // -2 (malformed) and units other than bytes: the Range field is ignored (RFC 9110 §14.2).
      if (ranges !== -2 && ranges.type === 'bytes' && ranges.length > 0) {
        start = ranges[0]!.start;
        end = ranges[0]!.end;
        status = 206;
        headers['Content-Range'] = `bytes ${start}-${end}/${opened.size}`;
      }
    }
    headers['Content-Length'] = end - start + 1;
    res.writeHead(status, headers);
    if (req.method === 'HEAD' || end < start) {
      res.end();
      return;
    }
    handed = true;
    // The stream owns the handle from here: it closes it when done or destroyed.
    const stream = readRange(opened, start, end, READ_CHUNK);
    await pipeline(stream, res).catch(() => undefined); // a client that goes away ends the download
  } finally {
    if (!handed) await closeFile(opened);
  }
}

/** 304 or 412 when a precondition says so, else undefined (RFC 9110 §13.2.2). */
function evaluateConditions(req: IncomingMessage, v: Validators): number | undefined {
  const ifMatch = req.headers['if-match'];
  if (ifMatch !== undefined) {
    if (!matchesAny(ifMatch, v.etag, true)) return 412;
  } else {
    const since = httpDate(req.headers['if-unmodified-since']);
    if (since !== undefined && v.modifiedSec > since) return 412;
  }
  const ifNoneMatch = req.headers['if-none-match'];
  const safe = req.method === 'GET' || req.method === 'HEAD';
  if (ifNoneMatch !== undefined) {
    if (matchesAny(ifNoneMatch, v.etag, false)) return safe ? 304 : 412;
  } else if (safe) {
    const since = httpDate(req.headers['if-modified-since']);
    if (since !== undefined && v.modifiedSec <= since) return 304;
  }
  return undefined;
}

/** If-Range: the range applies only to the representation the client names (strong ETag or exact date). */
function rangeApplies(req: IncomingMessage, v: Validators): boolean {
  const ifRange = header(req, 'if-range');
  if (ifRange === undefined) return true;
  const value = ifRange.trim();
  if (value.startsWith('"') || value.startsWith('W/')) return value === v.etag;
  return httpDate(value) === v.modifiedSec;
}

/** Whether an If-Match/If-None-Match list names `etag` (`*` names anything); weak comparison unless `strong`. */
function matchesAny(list: string, etag: string, strong: boolean): boolean {
  if (list.trim() === '*') return true;
  for (const raw of list.split(',')) {
    const tag = raw.trim();
    if (tag.startsWith('W/')) {
      if (!strong && tag.slice(2) === etag) return true;
    } else if (tag === etag) {
      return true;
    }
  }
  return false;
}

/** An HTTP date in whole seconds, or undefined when absent or unparsable (then ignored). */
export function httpDate(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : undefined;
}
