import { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

/** Worker side of io/digester.ts: one sha256 per stream id, acked per batch. */
type ToWorker =
  | { t: 'open'; id: number }
  | { t: 'update'; id: number; data: ArrayBuffer }
  | { t: 'digest'; id: number }
  | { t: 'drop'; id: number };

const hashes = new Map<number, Hash>();

parentPort!.on('message', (message: ToWorker) => {
  try {
    if (message.t === 'open') {
      hashes.set(message.id, createHash('sha256'));
    } else if (message.t === 'drop') {
      hashes.delete(message.id); // an abandoned transfer: no digest is owed
    } else if (message.t === 'update') {
      // A batch may still arrive after its stream was dropped: hand it back all the same.
      hashes.get(message.id)?.update(new Uint8Array(message.data));
      // Hand the buffer back for reuse: no allocation per batch on either side.
      parentPort!.postMessage({ t: 'ack', id: message.id, n: message.data.byteLength, data: message.data }, [message.data]);
    } else {
      const digest = hashes.get(message.id)!.digest();
      hashes.delete(message.id);
      parentPort!.postMessage({ t: 'digest', id: message.id, digest });
    }
  } catch (error) {
    parentPort!.postMessage({ t: 'error', id: message.id, message: error instanceof Error ? error.message : String(error) });
  }
});
