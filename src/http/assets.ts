import { promises as fs } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FerryError } from '../errors.js';

/**
 * The web page's script and style, bundled by scripts/build.mjs into dist/web/. This module
 * is compiled to dist/src/http/ and bundled into dist/bin/cli/: both are two folders below
 * dist/, so one relative URL finds the assets from either.
 */
const WEB_DIR = new URL('../../web/', import.meta.url);

const ASSETS: Record<string, string> = {
  'app.js': 'text/javascript; charset=utf-8',
  'app.js.map': 'application/json',
  'app.css': 'text/css; charset=utf-8',
};

/** Files are small and never change while the server runs: read once, kept. */
const cache = new Map<string, Promise<Buffer>>();

export async function serveAsset(req: IncomingMessage, res: ServerResponse, file: string): Promise<void> {
  const type = ASSETS[file];
  if (type === undefined) throw new FerryError('NOT_FOUND', `no page asset named "${file}"`);
  let loading = cache.get(file);
  if (!loading) {
    loading = fs.readFile(new URL(file, WEB_DIR));
    cache.set(file, loading);
  }
  let body: Buffer;
  try {
    body = await loading;
  } catch {
    cache.delete(file);
    throw new FerryError('NOT_FOUND', `the page asset "${file}" is missing: run npm run build`);
  }
  res.writeHead(200, { 'Content-Type': type, 'Content-Length': body.length, 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff' });
  res.end(req.method === 'HEAD' ? undefined : body);
}
