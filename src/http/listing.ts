import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StoredEntry } from '../storage/store.js';
import type { DoorContext } from './context.js';
import { preferredAlgorithm } from '../io/digest.js';
import { digestText } from './digest.js';
import { pageEnd, pageRow, pageStart } from './page.js';
import { wantsJson } from './respond.js';
import { pathOf } from './target.js';

/**
 * `GET /folder/`: the folder's files and folders, streamed from the store's batched listing
 * (one batch in memory at a time), as JSON for `Accept: application/json` and as the web page
 * otherwise. A missing folder is 404; a name that is a file is redirected to the file.
 */
export async function serveListing(req: IncomingMessage, res: ServerResponse, ctx: DoorContext, folder: string, query: string): Promise<void> {
  // Listings carry the digest ferry clients use (BLAKE3 where it loads), so a folder of files
  // stored by `ferry put` lists without a SHA-256 of each (~15× the cost here); a file's own
  // GET/HEAD carries its SHA-256 (Repr-Digest), computed once on first demand.
  const batches = ctx.store.listStream(folder, false, { missing: 'error', algorithm: preferredAlgorithm() })[Symbol.asyncIterator]();
  const first = await batches.next();
  const firstBatch = first.done ? [] : first.value;
  if (folder !== '' && firstBatch.length === 1 && firstBatch[0]!.kind === 'file' && firstBatch[0]!.name === folder) {
    await batches.return?.();
    res.writeHead(301, { Location: pathOf(folder) + query, 'Content-Length': 0 });
    res.end();
    return;
  }
  const json = wantsJson(req);
  res.writeHead(200, {
    'Content-Type': json ? 'application/json' : 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    Vary: 'Accept',
    ...(json ? {} : { 'Content-Security-Policy': PAGE_POLICY }),
  });
  if (req.method === 'HEAD') {
    await batches.return?.();
    res.end();
    return;
  }
  const render = json ? jsonRenderer(folder) : htmlRenderer(folder, ctx.access.required);
  try {
    if (!(await write(res, render.start()))) return;
    let batch = firstBatch;
    for (;;) {
      for (const entry of batch) if (!(await write(res, render.entry(entry)))) return;
      const next = await batches.next();
      if (next.done) break;
      batch = next.value;
    }
    res.end(render.end());
  } catch (error) {
    // Headers are gone: the only way to say "incomplete" is to cut the connection.
    ctx.log.warn({ folder, reason: error instanceof Error ? error.message : String(error) }, 'http listing cut short');
    res.destroy();
  } finally {
    await batches.return?.();
  }
}

/** The page's Content-Security-Policy: its own script and style only, nothing inline. */
export const PAGE_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

interface Renderer {
  start(): string;
  entry(entry: StoredEntry): string;
  end(): string;
}

/** Writes, waiting while the socket is full; false when the client went away. */
function write(res: ServerResponse, text: string): Promise<boolean> | boolean {
  if (res.destroyed) return false;
  if (res.write(text)) return true;
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = (): void => done(true);
    const onClose = (): void => done(false);
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}

function leafOf(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1);
}

function jsonRenderer(_folder: string): Renderer {
  let count = 0;
  return {
    start: () => '[',
    entry: (entry) => {
      const item = {
        name: leafOf(entry.name),
        path: entry.name,
        kind: entry.kind,
        size: entry.kind === 'file' ? entry.size : null,
        mtime: entry.kind === 'file' ? new Date(entry.mtimeMs).toISOString() : null,
        digest: entry.kind === 'file' ? digestText(entry, preferredAlgorithm()) : null,
      };
      return `${count++ === 0 ? '\n' : ',\n'}${JSON.stringify(item)}`;
    },
    end: () => (count === 0 ? ']\n' : '\n]\n'),
  };
}

function htmlRenderer(folder: string, tokens: boolean): Renderer {
  return {
    start: () => pageStart(folder, tokens),
    entry: (entry) => pageRow(entry, leafOf(entry.name), digestText(entry, preferredAlgorithm())),
    end: () => pageEnd(folder),
  };
}
