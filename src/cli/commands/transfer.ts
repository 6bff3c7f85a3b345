import path from 'node:path';
import { printableName, type TransferResult } from '../../index.js';
import { UsageError } from '../exit.js';
import { duration, humanSize, rate } from '../format.js';
import { progressBar } from '../progress.js';
import { withClient, type ClientOptions } from '../session.js';

export interface PutCliOptions extends ClientOptions {
  as?: string;
  overwrite?: boolean;
  rename?: boolean;
  quiet?: boolean;
  json?: boolean;
}

export interface GetCliOptions extends ClientOptions {
  output?: string;
  quiet?: boolean;
  json?: boolean;
}

export async function put(file: string, options: PutCliOptions): Promise<void> {
  const name = options.as ?? path.basename(file);
  const bar = await progressBar(`put ${printableName(name)}`, options.quiet || options.json);
  const started = performance.now();
  const result = await withClient(options, (client) =>
    client.put(file, name, { overwrite: options.overwrite, rename: options.rename, onProgress: (p) => bar.update(p) }),
  ).finally(() => bar.stop());
  report('stored', result, performance.now() - started, options);
}

export async function get(name: string, options: GetCliOptions): Promise<void> {
  const target = options.output ?? path.basename(name);
  if (target === '') throw new UsageError('no output file: use -o FILE');
  const bar = await progressBar(`get ${printableName(name)}`, options.quiet || options.json);
  const started = performance.now();
  const result = await withClient(options, (client) =>
    client.get(name, target, { onProgress: (p) => bar.update(p) }),
  ).finally(() => bar.stop());
  report(`saved ${target} from`, result, performance.now() - started, options);
}

function report(verb: string, result: TransferResult, ms: number, options: { quiet?: boolean; json?: boolean }): void {
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ name: result.name, size: result.size, sha256: result.sha256, mtime: result.mtime.toISOString(), seconds: ms / 1000 })}\n`);
  } else if (!options.quiet) {
    process.stdout.write(
      `${verb} ${printableName(result.name)}  ${humanSize(result.size)}  sha256 ${result.sha256}  ${duration(ms)} (${rate(result.size, ms)})\n`,
    );
  }
}
