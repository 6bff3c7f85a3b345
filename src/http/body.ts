import type { IncomingMessage } from 'node:http';
import { FerryError } from '../errors.js';
import type { StoreUpload as Upload } from '../storage/backend.js';
import type { ConnectionWatch } from './watch.js';

/**
 * Streams a request body into an upload: each chunk is hashed and queued by the upload's
 * file sink; while the disk is behind, the request is paused (and that pause is not the
 * peer's silence). Resolves when the body has ended; rejects with the upload's refusal
 * (TOO_LARGE, QUOTA), or CONNECTION when the client went away first. The caller commits or
 * aborts the upload.
 */
export function receiveBody(req: IncomingMessage, upload: Upload, watch: ConnectionWatch | undefined, onChunk?: (chunk: Buffer) => void): Promise<void> {
  if (req.readableEnded) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const finish = (error?: unknown): void => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onData = (chunk: Buffer): void => {
      watch?.touch();
      let more: boolean;
      try {
        onChunk?.(chunk);
        more = upload.write(chunk);
      } catch (error) {
        req.pause();
        finish(error);
        return;
      }
      if (!more) {
        req.pause();
        if (watch) watch.diskBusy++;
        upload.sink.onDrain(() => {
          if (watch) watch.diskBusy--;
          if (!settled) req.resume();
        });
      }
    };
    const onEnd = (): void => finish();
    const onClose = (): void => {
      if (!req.complete) finish(new FerryError('CONNECTION', 'the client went away before the body was complete'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('close', onClose);
  });
}
