import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import { FerryError } from '../errors.js';

/**
 * The raw sender: a file's plain bytes to any raw receiver (a ferry raw port, `nc -l`, …),
 * then a half-close, then a wait for the receiver to close. That last wait matters: a ferry
 * raw port closes cleanly only once the file is durably stored, and resets if it discarded it.
 */

export const DEFAULT_RAW_TIMEOUT_MS = 10_000;
const READ_CHUNK = 256 * 1024;

export interface RawSendOptions {
  host: string;
  port: number;
  /** Connect timeout, and the longest stall tolerated while sending or waiting for the close. */
  timeoutMs?: number;
  onProgress?: (progress: { bytes: number; total: number }) => void;
}

export interface RawSendResult {
  bytes: number;
  /** Lowercase hex sha256 of the bytes sent. */
  sha256: string;
}

export async function sendRawFile(file: string, options: RawSendOptions): Promise<RawSendResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_RAW_TIMEOUT_MS;
  const where = options.host.includes(':') ? `[${options.host}]:${options.port}` : `${options.host}:${options.port}`;
  const handle = await openLocalFile(file);
  try {
    const total = (await handle.stat()).size;
    const socket = await connectWithin(options.host, options.port, timeoutMs, where);
    return await streamThenWaitForClose(socket, handle, total, { ...options, timeoutMs, where });
  } finally {
    await handle.close();
  }
}

async function openLocalFile(file: string): Promise<fs.FileHandle> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new FerryError('LOCAL_IO', `no such local file: ${file}`, { cause: error });
    if (code === 'EACCES') throw new FerryError('LOCAL_IO', `no permission to read ${file}`, { cause: error });
    throw new FerryError('LOCAL_IO', `cannot open ${file}: ${(error as Error).message}`, { cause: error });
  }
  if (!(await handle.stat()).isFile()) {
    await handle.close();
    throw new FerryError('LOCAL_IO', `${file} is not a regular file`);
  }
  return handle;
}

function connectWithin(host: string, port: number, timeoutMs: number, where: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    // Half-open: a receiver that shuts down its sending side early may still be reading.
    const socket = net.connect({ host, port, allowHalfOpen: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new FerryError('TIMEOUT', `no connection to ${where} within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(socket);
    });
    const onError = (error: NodeJS.ErrnoException): void => {
      clearTimeout(timer);
      reject(connectError(error, where));
    };
    socket.once('error', onError);
  });
}

interface StreamContext {
  timeoutMs: number;
  where: string;
  onProgress?: RawSendOptions['onProgress'];
}

async function streamThenWaitForClose(
  socket: net.Socket,
  handle: fs.FileHandle,
  total: number,
  ctx: StreamContext,
): Promise<RawSendResult> {
  const hash = createHash('sha256');
  let sent = 0;
  let allSent = false;
  const progress = (): string => `${sent} of ${total} bytes sent`;

  // Settles with the connection's fate: closed by the peer after everything was sent, or not.
  const outcome = new Promise<void>((resolve, reject) => {
    socket.setTimeout(ctx.timeoutMs, () => {
      reject(
        new FerryError(
          'TIMEOUT',
          allSent
            ? `${ctx.where} did not close the connection within ${ctx.timeoutMs / 1000} s after all ${total} bytes were sent`
            : `no progress for ${ctx.timeoutMs / 1000} s sending to ${ctx.where} (${progress()})`,
        ),
      );
    });
    socket.on('error', (error: NodeJS.ErrnoException) => reject(transferError(error, ctx.where, allSent, progress())));
    socket.on('close', () => {
      if (allSent) resolve();
      else reject(new FerryError('CLOSED', `${ctx.where} closed the connection early (${progress()})`));
    });
  });
  outcome.catch(() => undefined); // observed below; never unhandled

  const pump = async (): Promise<void> => {
    for await (const piece of handle.createReadStream({ highWaterMark: READ_CHUNK, autoClose: false, start: 0 })) {
      const chunk = piece as Buffer;
      hash.update(chunk);
      sent += chunk.length;
      ctx.onProgress?.({ bytes: sent, total });
      if (!socket.write(chunk)) await new Promise<void>((resolve) => socket.once('drain', resolve));
    }
    if (sent !== total) throw new FerryError('LOCAL_IO', `the file changed while it was sent (${sent} bytes read, ${total} expected)`);
    allSent = true;
    socket.end(); // FIN: "that was the whole file"
  };

  socket.resume(); // whatever the receiver says is read and dropped, so it can never block on us
  try {
    await Promise.race([pump(), outcome]);
    await outcome;
  } catch (error) {
    // A reset, not a FIN: a raw receiver must not take the bytes so far for the whole file.
    socket.resetAndDestroy();
    throw error;
  }
  return { bytes: sent, sha256: hash.digest('hex') };
}

function connectError(error: NodeJS.ErrnoException, where: string): FerryError {
  switch (error.code) {
    case 'ECONNREFUSED':
      return new FerryError('CONNECTION', `connection refused by ${where}: nothing is listening there`, { cause: error });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new FerryError('CONNECTION', `cannot resolve the host in ${where}`, { cause: error });
    case 'ETIMEDOUT':
      return new FerryError('TIMEOUT', `no connection to ${where} (timed out)`, { cause: error });
    default:
      return new FerryError('CONNECTION', `cannot connect to ${where}: ${error.code ?? error.message}`, { cause: error });
  }
}

function transferError(error: NodeJS.ErrnoException, where: string, allSent: boolean, progress: string): FerryError {
  if (error.code === 'ECONNRESET' || error.code === 'EPIPE') {
    const what = allSent ? `after all bytes were sent: the receiver did not accept the file` : `(${progress})`;
    return new FerryError('CLOSED', `connection reset by ${where} ${what}`, { cause: error });
  }
  return new FerryError('CONNECTION', `connection to ${where} failed (${progress}): ${error.code ?? error.message}`, { cause: error });
}
