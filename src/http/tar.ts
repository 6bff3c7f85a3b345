import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import tar from 'tar-stream';
import { FerryError } from '../errors.js';
import { readRange } from '../storage/backend.js';
import type { DoorContext } from './context.js';
import { attachment } from './content-type.js';

const READ_CHUNK = 256 * 1024;

/**
 * `GET /folder/?download=tar`: every file below the folder as one streamed tar (POSIX ustar,
 * pax headers for long names), read from the store's batched listing one file at a time and
 * paced by the client's reading. Entries are `<folder>/<relative name>`. A file removed
 * between the listing and its turn is left out; one replaced meanwhile is sent whole, in the
 * version opened.
 */
export async function serveTar(req: IncomingMessage, res: ServerResponse, ctx: DoorContext, folder: string): Promise<void> {
  const batches = ctx.store.listStream(folder, true, { missing: 'error' })[Symbol.asyncIterator]();
  const first = await batches.next();
  const leaf = folder === '' ? 'ferry' : folder.slice(folder.lastIndexOf('/') + 1);
  res.writeHead(200, {
    'Content-Type': 'application/x-tar',
    'Content-Disposition': attachment(`${leaf}.tar`),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  if (req.method === 'HEAD') {
    await batches.return?.();
    res.end();
    return;
  }
  const pack = tar.pack();
  let gone = false;
  const closed = new Promise<void>((resolve) =>
    res.on('close', () => {
      gone = true;
      pack.destroy();
      resolve();
    }),
  );
  pack.on('error', () => res.destroy());
  pack.pipe(res);
  const strip = folder === '' ? 0 : folder.length - leaf.length;
  try {
    let result = first;
    while (!result.done && !gone) {
      for (const entry of result.value) {
        if (gone) break;
        if (entry.kind === 'file') await addFile(ctx, pack, entry.name, entry.name.slice(strip), closed);
      }
      result = await batches.next();
    }
    if (!gone) pack.finalize();
  } catch (error) {
    ctx.log.warn({ folder, reason: error instanceof Error ? error.message : String(error) }, 'http tar download cut short');
    res.destroy();
  } finally {
    await batches.return?.();
  }
}

async function addFile(ctx: DoorContext, pack: tar.Pack, name: string, inTar: string, closed: Promise<void>): Promise<void> {
  let gone = false;
  void closed.then(() => (gone = true));
  let opened;
  try {
    opened = await ctx.store.openRead(name);
  } catch (error) {
    if (error instanceof FerryError && (error.code === 'NOT_FOUND' || error.code === 'CONFLICT')) return;
    throw error;
  }
  const stream = readRange(opened, 0, Math.max(0, opened.size - 1), READ_CHUNK);
  try {
    let done!: (error?: Error | null) => void;
    const written = new Promise<void>((resolve, reject) => (done = (error) => (error ? reject(error) : resolve())));
    written.catch(() => undefined); // also awaited below, unless the client left first
    const sink = pack.entry({ name: inTar, size: opened.size, mtime: new Date(opened.mtimeMs), mode: 0o644, type: 'file' }, done);
    if (opened.size > 0) {
      for await (const chunk of stream) {
        if (gone) throw new FerryError('CONNECTION', 'the client went away');
        if (!sink.write(chunk as Buffer)) await Promise.race([once(sink, 'drain'), closed]);
      }
    }
    sink.end(undefined);
    await Promise.race([written, closed]);
  } finally {
    stream.destroy();
  }
}
