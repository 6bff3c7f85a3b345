import type { IncomingMessage, ServerResponse } from 'node:http';
import { FerryError } from '../errors.js';
import type { StoreUpload as Upload } from '../storage/backend.js';
import { receiveBody } from './body.js';
import { expectsContinue, type DoorContext } from './context.js';
import { DigestCheck, digestText, etagOf, expectedDigests, reprDigest } from './digest.js';
import { sendJson } from './respond.js';
import { flag, pathOf, type Target } from './target.js';

/**
 * `PUT /name`: the body becomes the file, through the store's upload path (private
 * temporary, sha256 while writing, size limit and quota while streaming, fsync, atomic
 * rename). Everything that can be checked from the headers — token, name, size limit, quota,
 * free space, an existing name — is checked before the body is read, and before `100 Continue`
 * is sent to a client that waits for it. `Content-Digest`/`Repr-Digest` (sha-256, sha-512) are
 * verified: a mismatch stores nothing and answers 422. An existing name is 409 unless
 * `?overwrite=1`. 201 for a new file, 200 for a replaced one.
 */
export async function handlePut(req: IncomingMessage, res: ServerResponse, ctx: DoorContext, target: Target): Promise<void> {
  await ctx.access.check(req, 'write');
  if (target.folder) {
    const made = await ctx.store.makeFolder(target.name);
    sendJson(res, made ? 201 : 200, { name: target.name, kind: 'folder' }, { Location: pathOf(target.name, true) });
    return;
  }
  const overwrite = flag(target.query, 'overwrite');
  const size = declaredSize(req);
  const expected = expectedDigests(req);
  await ctx.store.checkUpload(target.name, { overwrite, size });
  const existed = overwrite && (await ctx.store.exists(target.name));
  const upload: Upload = await ctx.store.beginUpload(target.name, { overwrite, size });
  const check = new DigestCheck(expected);
  try {
    if (expectsContinue(req)) res.writeContinue();
    await receiveBody(req, upload, ctx.watchOf(req), (chunk) => check.update(chunk));
    check.verify();
  } catch (error) {
    await upload.abort();
    throw error;
  }
  const entry = await upload.commit({ size, digest: expected.sha256 });
  ctx.log.info({ peer: req.socket.remoteAddress, name: entry.name, size: entry.size, sha256: entry.digest.toString('hex') }, 'http upload stored');
  sendJson(res, existed ? 200 : 201, { name: entry.name, size: entry.size, digest: digestText(entry) }, {
    Location: pathOf(entry.name),
    ETag: etagOf(entry),
    'Repr-Digest': reprDigest(entry),
  });
}

/** Content-Length, or undefined for a chunked body; a malformed one is refused. */
function declaredSize(req: IncomingMessage): number | undefined {
  const header = req.headers['content-length'];
  if (header === undefined) return undefined;
  if (!/^\d{1,16}$/.test(header)) throw new FerryError('PROTOCOL', 'malformed Content-Length');
  const size = Number(header);
  if (!Number.isSafeInteger(size)) throw new FerryError('TOO_LARGE', `${header} bytes is over the server's limit`);
  return size;
}
