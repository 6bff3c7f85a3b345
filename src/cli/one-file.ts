import { createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import type { FerryDownloader } from '../client/downloader.js';
import type { FerryReader } from '../client/reader.js';
import type { FerryUploader } from '../client/uploader.js';
import { FerryError } from '../errors.js';
import type { Entry, Progress, TransferResult } from '../client/types.js';
import { printableName } from '../protocol/names.js';
import { UsageError } from './exit.js';
import { duration, humanSize, rate } from './format.js';
import { onInterrupt } from './interrupt.js';
import { digestOfFile, localTarget, prepareFolder } from './local-target.js';
import { cannotWrite, userMessage } from './messages.js';
import type { ProgressReporter } from './progress.js';
import { mtimeSeconds } from '../io/file-times.js';

/**
 * One named file moved alone (`ferry put FILE`, `ferry get NAME`): the local planning of a
 * single get, the move with its bar and interrupt handling, and the line it prints. Shared by
 * the full CLI (commands/transfer.ts) and the launcher's quick path for a plain get
 * (quick-get.ts), which must not load the rest of transfer.ts (trees, batches, lanes).
 */

/** One file to move: `local` is a path, or '-' for stdin/stdout. */
export interface OneFile {
  name: string;
  local: string;
}

/** One FILE of `put`: its size and time when already read, or why it cannot be sent. */
export interface PutJob extends OneFile {
  size: number | undefined;
  mtimeMs?: number;
  /** Why this file cannot be sent (a missing file, a folder without -r…), found while planning. */
  problem?: unknown;
}

/** What happened to one file: moved, or left alone because the destination already holds the same bytes. */
export type Outcome = { skipped: false; result: TransferResult } | { skipped: true; entry: Entry };

export interface Hooks {
  onProgress: (progress: Progress) => void;
  onResume: (offset: number) => void;
}

/** How a single move reports: quietly, as JSON, or one line per file. */
export interface ReportOptions {
  quiet?: boolean;
  json?: boolean;
}

/**
 * The local path a single `get NAME` writes (`-o PATH`, else the name's last part here), or
 * '-' for stdout. Like cp and scp: an existing folder receives the file inside it; a path
 * ending in / names a folder (created if only its last component is missing).
 */
export async function singleGetDestination(name: string, output: string | undefined): Promise<string> {
  const base = name.split('/').pop() ?? name;
  let local = output ?? base;
  if (output !== undefined && output !== '-' && (output.endsWith('/') || (await isFolder(output)))) {
    await prepareFolder(output);
    local = path.join(output, base);
  }
  if (local === '') throw new UsageError('no output file: use -o FILE');
  return local;
}

export async function isFolder(local: string): Promise<boolean> {
  return (await fs.stat(local).catch(() => undefined))?.isDirectory() === true;
}

/**
 * What one FILE argument of `put` is: a file to send (or stdin, '-', which needs --as), one
 * that cannot be sent (with the reason), or a folder to walk with -r.
 */
export async function putJob(file: string, options: { as?: string; recursive?: boolean }): Promise<PutJob | { tree: string; base: string }> {
  if (file === '-') {
    if (options.as === undefined) throw new UsageError('reading stdin needs a name: ferry put - --as NAME');
    return { name: options.as, local: '-', size: undefined };
  }
  const name = options.as ?? path.basename(file);
  let stats;
  try {
    stats = await fs.stat(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const problem = new FerryError('LOCAL_IO', code === 'ENOENT' ? `no such local file: ${file}` : `cannot read ${file}: ${userMessage(error)}`);
    return { name, local: file, size: undefined, problem };
  }
  if (stats.isDirectory()) {
    if (!options.recursive) return { name, local: file, size: undefined, problem: new FerryError('LOCAL_IO', `${file} is a folder: use -r to upload it with its contents`) };
    return { tree: file, base: path.basename(path.resolve(file)) };
  }
  return { name, local: file, size: stats.size, mtimeMs: stats.mtimeMs };
}

/**
 * One put: an identical stored file is left alone; the server's EXISTS says when to look for
 * one (a fresh upload costs no extra request); with --overwrite/--rename nothing is refused, so
 * the check comes first.
 */
export async function putOne(
  client: FerryUploader,
  job: PutJob,
  options: { overwrite?: boolean; rename?: boolean; resume?: boolean; preserve?: boolean },
  hooks: Partial<Hooks>,
): Promise<Outcome> {
  const fromFile = job.local !== '-';
  const identical = async (): Promise<Outcome | undefined> => {
    if (!fromFile) return undefined;
    const same = await storedCopy(client, job.name, job.local, job.size);
    return same === undefined ? undefined : { skipped: true, entry: same };
  };
  if (options.overwrite || options.rename) {
    const skipped = await identical();
    if (skipped) return skipped;
  }
  const source = fromFile ? job.local : process.stdin;
  // -p: the stored file keeps the local file's modification time (a pipe has none to keep).
  const mtimeMs = options.preserve && fromFile ? (job.mtimeMs ?? (await fs.stat(job.local)).mtimeMs) : undefined;
  try {
    const result = await client.put(source, job.name, { overwrite: options.overwrite, rename: options.rename, resume: options.resume, mtimeMs, ...hooks });
    return { skipped: false, result };
  } catch (error) {
    if (!(error instanceof FerryError && error.code === 'EXISTS')) throw error;
    const skipped = await identical();
    if (skipped) return skipped;
    throw error;
  }
}

/** The stored file `name` if it already holds the bytes of local file `local` (same size, same digest). */
export async function storedCopy(client: FerryReader, name: string, local: string, size: number | undefined, known?: Entry): Promise<Entry | undefined> {
  const entry =
    known ??
    (await client.stat(name).catch((error: unknown) => {
      if (error instanceof FerryError && error.code === 'NOT_FOUND') return undefined;
      throw error;
    }));
  if (entry === undefined || entry.kind !== 'file' || entry.size !== size) return undefined;
  return (await digestOfFile(local, entry.algorithm)) === entry.digest ? entry : undefined;
}

/** One get: to stdout ('-'), or to a local path as download() writes it, failures naming that path. */
export async function getOne(client: FerryDownloader, job: OneFile & { remote?: Entry }, options: { resume?: boolean; preserve?: boolean }, hooks: Partial<Hooks>): Promise<Outcome> {
  if (job.local === '-') return { skipped: false, result: await client.get(job.name, process.stdout, hooks) };
  try {
    return await download(client, job.name, job.local, { resume: options.resume, preserve: options.preserve, remote: job.remote }, hooks);
  } catch (error) {
    throw cannotWrite(job.local, error);
  }
}

/**
 * One download to a local path, as cp would write it: a regular file is replaced atomically
 * once verified (keeping its mode), a FIFO or device is written into, an identical file is left alone.
 */
export async function download(
  client: FerryDownloader,
  name: string,
  local: string,
  options: { resume?: boolean; preserve?: boolean; remote?: Entry },
  hooks: Partial<Hooks>,
): Promise<Outcome> {
  const target = await localTarget(local);
  if (target.kind === 'special') return { skipped: false, result: await downloadInto(client, name, target.path, hooks) };
  if (target.stats !== undefined) {
    const remote = options.remote ?? (await client.stat(name));
    if (remote.kind === 'file' && remote.size === target.stats.size && (await digestOfFile(target.path, remote.algorithm)) === remote.digest) {
      if (options.preserve) await fs.utimes(target.path, new Date(), mtimeSeconds(remote.mtime.getTime()));
      return { skipped: true, entry: remote };
    }
  }
  const result = await client.get(name, target.path, { resume: options.resume, ...hooks });
  if (target.mode !== undefined) await fs.chmod(target.path, target.mode);
  if (options.preserve) await fs.utimes(target.path, new Date(), mtimeSeconds(result.mtime.getTime()));
  return { skipped: false, result };
}

/** Writes a download into a FIFO or a device in place (no temporary, no rename), like cp. */
async function downloadInto(client: FerryDownloader, name: string, file: string, hooks: Partial<Hooks>): Promise<TransferResult> {
  const stream = createWriteStream(file, { flags: 'w' });
  // A write error (ENOSPC on /dev/full, a reader gone from a FIFO) ends this download at once.
  const broken = new Promise<never>((_, reject) =>
    stream.once('error', (error) => {
      client.destroy();
      reject(error);
    }),
  );
  try {
    const result = await Promise.race([client.get(name, stream, hooks), broken]);
    await Promise.race([new Promise<void>((resolve, reject) => stream.end((error?: Error | null) => (error ? reject(error) : resolve()))), broken]);
    return result;
  } finally {
    stream.destroy();
  }
}

/**
 * Moves one named file with its own bar: `connected` opens the session and runs the move in
 * it. Its failure is thrown, so it prints as the command's one error line. Ctrl-C restores
 * the terminal and says how to continue. Returns the exit code (0).
 */
export async function moveOneFile<C>(
  verb: 'put' | 'get',
  job: OneFile,
  options: ReportOptions,
  resumable: boolean,
  progressBar: (label: string, quiet: boolean | undefined) => Promise<ProgressReporter>,
  connected: (move: (client: C) => Promise<Outcome>) => Promise<Outcome>,
  move: (client: C, hooks: Hooks) => Promise<Outcome>,
): Promise<number> {
  // With data on stdout, everything else goes to stderr.
  const out = verb === 'get' && job.local === '-' ? process.stderr : process.stdout;
  let stopBar = (): void => undefined;
  const removeInterrupt = onInterrupt({
    cleanup: () => stopBar(),
    hint: () => (resumable ? 'run the same command again to resume' : undefined),
  });
  try {
    const bar = await progressBar(`${verb} ${printableName(job.name)}`, options.quiet || options.json);
    stopBar = () => bar.stop();
    // process.hrtime, not performance.now(): the performance global loads perf_hooks (~1.5 ms of a quick get).
    const started = process.hrtime.bigint();
    const outcome = await connected((client) => move(client, { onProgress: (p) => bar.update(p), onResume: resumeNote(job, options) })).finally(() => bar.stop());
    report(out, verb, job, outcome, Number(process.hrtime.bigint() - started) / 1e6, options);
    return 0;
  } finally {
    removeInterrupt();
  }
}

const silent: ProgressReporter = { update: () => undefined, stop: () => undefined };

/** No bar: for the quick paths, which run only when none would be drawn (progress.ts's wantsProgress). */
export function noBar(): Promise<ProgressReporter> {
  return Promise.resolve(silent);
}

/** The note printed when a transfer continues an interrupted one. */
export function resumeNote(job: OneFile, options: ReportOptions): (offset: number) => void {
  return (offset) => {
    if (!options.quiet) process.stderr.write(`resuming at ${offset} bytes: ${printableName(job.name)}\n`);
  };
}

/** The line (or JSON object) printed for one file moved or left alone. */
export function report(out: NodeJS.WriteStream, verb: 'put' | 'get', job: OneFile, outcome: Outcome, ms: number, options: ReportOptions): void {
  const local = job.local === '-' ? (verb === 'put' ? 'stdin' : 'stdout') : job.local;
  if (outcome.skipped) {
    const { entry } = outcome;
    if (options.json) {
      const row = { name: entry.name, local: job.local, size: entry.size, algorithm: entry.algorithm, digest: entry.digest, mtime: entry.mtime.toISOString(), skipped: 'identical', resumedFrom: 0, seconds: Math.round(ms) / 1000 };
      out.write(`${JSON.stringify(row)}\n`);
    } else if (!options.quiet) {
      const what = verb === 'put' ? `${printableName(entry.name)} is already stored` : `${local} already holds ${printableName(entry.name)}`;
      out.write(`skipped ${what}, identical  ${humanSize(entry.size)}  ${entry.algorithm} ${entry.digest}\n`);
    }
    return;
  }
  const { result } = outcome;
  if (options.json) {
    const row = {
      name: result.name,
      local: job.local,
      size: result.size,
      algorithm: result.algorithm,
      digest: result.digest,
      mtime: result.mtime.toISOString(),
      resumedFrom: result.resumedFrom,
      seconds: Math.round(ms) / 1000,
    };
    out.write(`${JSON.stringify(row)}\n`);
  } else if (!options.quiet) {
    const what = verb === 'put' ? `stored ${printableName(result.name)}` : `saved ${local} from ${printableName(result.name)}`;
    const resumed = result.resumedFrom > 0 ? `, resumed at ${result.resumedFrom}` : '';
    out.write(`${what}  ${humanSize(result.size)}  ${result.algorithm} ${result.digest}  ${duration(ms)} (${rate(result.size - result.resumedFrom, ms)}${resumed})\n`);
  }
}
