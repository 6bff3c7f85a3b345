import type { IncomingMessage, ServerResponse } from 'node:http';
import { FerryError } from '../errors.js';
import { header, type DoorContext } from './context.js';
import { sendJson } from './respond.js';
import { decodeName, flag, pathOf, type Target } from './target.js';

/**
 * Changes, each needing a write token: DELETE (a folder only with `?recursive=1`), MOVE
 * (WebDAV's method and `Destination` header: one request, no body, and clients such as curl,
 * rclone and file managers already speak it) and MKCOL (also `PUT /folder/`).
 */
export async function handleDelete(req: IncomingMessage, res: ServerResponse, ctx: DoorContext, target: Target): Promise<void> {
  await ctx.access.check(req, 'write');
  if (target.name === '') throw new FerryError('CONFLICT', 'the root folder cannot be removed');
  const recursive = flag(target.query, 'recursive');
  let files = 1;
  try {
    if (target.folder) throw new FerryError('CONFLICT', `"${target.name}" is a folder`);
    await ctx.store.remove(target.name);
  } catch (error) {
    if (!(error instanceof FerryError && error.code === 'CONFLICT' && /is a folder/.test(error.message))) throw error;
    if (!recursive) throw new FerryError('CONFLICT', `"${target.name}" is a folder: add ?recursive=1 to remove it with everything in it`);
    files = await ctx.store.removeTree(target.name);
  }
  ctx.log.info({ peer: req.socket.remoteAddress, name: target.name, files }, 'http removed');
  res.writeHead(204);
  res.end();
}

export async function handleMove(req: IncomingMessage, res: ServerResponse, ctx: DoorContext, target: Target): Promise<void> {
  await ctx.access.check(req, 'write');
  const destination = destinationName(header(req, 'destination'));
  const overwrite = flag(target.query, 'overwrite') || header(req, 'overwrite')?.trim().toUpperCase() === 'T';
  const existed = overwrite && (await ctx.store.exists(destination.name).catch(() => false));
  const { kind } = await ctx.store.rename(target.name, destination.name, { overwrite });
  ctx.log.info({ peer: req.socket.remoteAddress, from: target.name, to: destination.name }, 'http moved');
  sendJson(res, existed ? 200 : 201, { name: destination.name, kind }, { Location: pathOf(destination.name, kind === 'folder') });
}

export async function handleMkcol(req: IncomingMessage, res: ServerResponse, ctx: DoorContext, target: Target): Promise<void> {
  await ctx.access.check(req, 'write');
  if (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') {
    throw new FerryError('UNSUPPORTED', 'MKCOL takes no body');
  }
  const made = await ctx.store.makeFolder(target.name);
  if (!made) throw new FerryError('EXISTS', `"${target.name}" already exists`);
  sendJson(res, 201, { name: target.name, kind: 'folder' }, { Location: pathOf(target.name, true) });
}

/**
 * The stored name a `Destination` header names: a path or an absolute URL (its host is not
 * looked at: the move is always within this server), decoded once and checked like any target.
 */
function destinationName(header: string | undefined): { name: string } {
  if (header === undefined || header.trim() === '') throw new FerryError('PROTOCOL', 'MOVE needs a Destination header (the new path)');
  let raw = header.trim();
  const absolute = /^https?:\/\/[^/]*(\/.*)?$/i.exec(raw);
  if (absolute) raw = absolute[1] ?? '/';
  if (!raw.startsWith('/')) throw new FerryError('BAD_NAME', 'bad Destination: give a path starting with / or a URL of this server');
  const mark = raw.search(/[?#]/);
  if (mark >= 0) raw = raw.slice(0, mark);
  if (/%(2f|5c)/i.test(raw)) throw new FerryError('BAD_NAME', 'bad name: an encoded / or \\ is not a separator and cannot be part of a name');
  const { name } = decodeName(raw);
  if (name === '') throw new FerryError('BAD_NAME', 'bad Destination: the root folder cannot be a destination');
  return { name };
}
