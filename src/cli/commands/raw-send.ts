import path from 'node:path';
import { printableName } from '../../client/index.js';
import { parseServerAddress } from '../address.js';
import { UsageError } from '../exit.js';
import { duration, humanSize, rate } from '../format.js';
import { onInterrupt } from '../interrupt.js';
import { userMessage } from '../messages.js';
import { progressBar } from '../progress.js';
import { parseSeconds } from '../numbers.js';
import { DEFAULT_RAW_TIMEOUT_MS, sendRawFile } from '../../services/raw-sender.js';

export interface RawSendCliOptions {
  server?: string;
  timeout?: string;
  quiet?: boolean;
  json?: boolean;
  as?: string;
  overwrite?: boolean;
  rename?: boolean;
}

/**
 * `ferry put --raw FILE -s HOST:PORT`. Returns the exit code; a failure is one line on
 * stderr starting with "ferry:", like every other command, exit 1.
 * `timeoutGiven` says whether --timeout came from the user (the raw default is 10 s, not 30).
 */
export async function rawSend(file: string, options: RawSendCliOptions, timeoutGiven: boolean): Promise<number> {
  if (options.server === undefined) throw new UsageError('--raw needs the receiver\'s address: -s HOST:PORT');
  if (options.as !== undefined || options.overwrite || options.rename) {
    throw new UsageError('--as, --overwrite and --rename do not apply to --raw: the receiver names the file');
  }
  const { host, port } = parseServerAddress(options.server);
  const timeoutMs = timeoutGiven && options.timeout !== undefined ? parseSeconds(options.timeout, '--timeout') : DEFAULT_RAW_TIMEOUT_MS;
  const bar = await progressBar(`raw ${printableName(path.basename(file))}`, options.quiet || options.json);
  const started = performance.now();
  let result;
  const removeInterrupt = onInterrupt({ cleanup: () => bar.stop(), hint: () => undefined });
  try {
    result = await sendRawFile(file, { host, port, timeoutMs, onProgress: (p) => bar.update(p) });
  } catch (error) {
    bar.stop();
    if (process.env.FERRY_DEBUG) console.error(error);
    process.stderr.write(`ferry: ${userMessage(error)}\n`);
    return 1;
  } finally {
    removeInterrupt();
  }
  bar.stop();
  const ms = performance.now() - started;
  const to = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ file, to, size: result.bytes, sha256: result.sha256, seconds: ms / 1000 })}\n`);
  } else if (!options.quiet) {
    process.stdout.write(`sent ${printableName(file)} to ${to}  ${humanSize(result.bytes)}  sha256 ${result.sha256}  ${duration(ms)} (${rate(result.bytes, ms)})\n`);
  }
  return 0;
}
