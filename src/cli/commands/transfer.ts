import { promises as fs } from 'node:fs';
import path from 'node:path';
import { FerryError, printableName, type FerryClient, type Progress, type TransferResult } from '../../client/index.js';
import { UsageError } from '../exit.js';
import { duration, humanSize, rate } from '../format.js';
import { localPathFor, walkLocalTree } from '../local-tree.js';
import { balance, runPool } from '../pool.js';
import { batchProgressBar, progressBar } from '../progress.js';
import { withClient, type ClientOptions } from '../session.js';

interface CommonOptions extends ClientOptions {
  quiet?: boolean;
  json?: boolean;
  /** false with --no-resume. */
  resume?: boolean;
  parallel?: string;
  recursive?: boolean;
}

export interface PutCliOptions extends CommonOptions {
  as?: string;
  overwrite?: boolean;
  rename?: boolean;
}

export interface GetCliOptions extends CommonOptions {
  output?: string;
}

/** One file to move: `local` is a path, or '-' for stdin/stdout. */
interface Job {
  name: string;
  local: string;
  size: number | undefined;
}

/** Requests kept in flight per connection when many files move: enough to hide latency, few open files. */
const PIPELINE_WINDOW = 32;
/** Connections used for many files unless --parallel says otherwise (see bench/RESULTS.md). */
export const DEFAULT_PARALLEL = 2;

export async function put(files: string[], options: PutCliOptions): Promise<number> {
  parseParallel(options.parallel, 1); // usage errors before any work
  const jobs = await planPuts(files, options);
  return transfer('put', jobs, options, (client, job, hooks) => {
    const source = job.local === '-' ? process.stdin : job.local;
    return client.put(source, job.name, { overwrite: options.overwrite, rename: options.rename, resume: options.resume, ...hooks });
  });
}

export async function get(names: string[], options: GetCliOptions): Promise<number> {
  parseParallel(options.parallel, 1);
  const jobs = await planGets(names, options);
  return transfer('get', jobs, options, async (client, job, hooks) => {
    if (job.local === '-') return client.get(job.name, process.stdout, hooks);
    await fs.mkdir(path.dirname(job.local), { recursive: true });
    return client.get(job.name, job.local, { resume: options.resume, ...hooks });
  });
}

async function planPuts(files: string[], options: PutCliOptions): Promise<Job[]> {
  if (options.as !== undefined && (files.length !== 1 || options.recursive)) {
    throw new UsageError('--as names one file: give exactly one FILE without -r');
  }
  const jobs: Job[] = [];
  for (const file of files) {
    if (file === '-') {
      if (options.as === undefined) throw new UsageError('reading stdin needs a name: ferry put - --as NAME');
      jobs.push({ name: options.as, local: '-', size: undefined });
      continue;
    }
    const stats = await fs.stat(file).catch((error: NodeJS.ErrnoException) => {
      throw new FerryError('LOCAL_IO', error.code === 'ENOENT' ? `no such local file: ${file}` : `cannot read ${file}: ${error.message}`);
    });
    if (stats.isDirectory()) {
      if (!options.recursive) throw new FerryError('LOCAL_IO', `${file} is a folder: use -r to upload it with its contents`);
      const base = path.basename(path.resolve(file));
      const tree = await walkLocalTree(file, (warning) => process.stderr.write(`ferry: warning: ${warning}\n`));
      for (const entry of tree) jobs.push({ name: `${base}/${entry.relative}`, local: entry.path, size: entry.size });
    } else {
      jobs.push({ name: options.as ?? path.basename(file), local: file, size: stats.size });
    }
  }
  return jobs;
}

async function planGets(names: string[], options: GetCliOptions): Promise<Job[]> {
  const toStdout = options.output === '-';
  if (toStdout && (names.length !== 1 || options.recursive)) throw new UsageError('-o - writes one file to stdout: give exactly one NAME without -r');
  if (options.recursive) {
    const jobs: Job[] = [];
    await withClient(options, async (client) => {
      for (const name of names) {
        const prefix = name.replace(/\/+$/, '');
        const base = prefix.split('/').pop() ?? prefix;
        const destination = options.output === undefined ? base : names.length > 1 ? path.join(options.output, base) : options.output;
        const entries = await client.list(prefix, { recursive: true });
        if (entries.length === 0) throw new FerryError('NOT_FOUND', `no folder named "${printableName(prefix)}"`);
        for (const entry of entries) {
          const local = localPathFor(destination, prefix, entry.name);
          if (local === undefined) {
            throw new FerryError('PROTOCOL', `server sent "${printableName(entry.name)}", which is outside "${printableName(prefix)}": refusing to write it`);
          }
          jobs.push({ name: entry.name, local, size: entry.size });
        }
      }
    });
    return jobs;
  }
  if (names.length === 1) {
    const name = names[0]!;
    const base = name.split('/').pop() ?? name;
    let local = options.output ?? base;
    // Like cp and scp: an existing folder (or a path ending in /) receives the file inside it.
    if (options.output !== undefined && (options.output.endsWith('/') || (await isFolder(options.output)))) {
      local = path.join(options.output, base);
    }
    if (local === '') throw new UsageError('no output file: use -o FILE');
    return [{ name, local, size: undefined }];
  }
  const folder = options.output ?? '.';
  return names.map((name) => ({ name, local: path.join(folder, name.split('/').pop() ?? name), size: undefined }));
}

async function isFolder(local: string): Promise<boolean> {
  return (await fs.stat(local).catch(() => undefined))?.isDirectory() === true;
}

interface Hooks {
  onProgress: (progress: Progress) => void;
  onResume: (offset: number) => void;
}

/**
 * Moves every job: one connection per group of files (--parallel), each pipelining its
 * requests. Prints one line (or JSON object) per file and one line per failure; returns the
 * exit code. A single file's failure is thrown, so it prints as the command's one error line.
 */
async function transfer(
  verb: 'put' | 'get',
  jobs: Job[],
  options: CommonOptions,
  move: (client: FerryClient, job: Job, hooks: Hooks) => Promise<TransferResult>,
): Promise<number> {
  if (jobs.length === 0) {
    if (!options.quiet) process.stderr.write(`ferry: nothing to ${verb}\n`);
    return 0;
  }
  // With data on stdout, everything else goes to stderr.
  const out = jobs.some((j) => j.local === '-' && verb === 'get') ? process.stderr : process.stdout;
  const silentBars = options.quiet || options.json;
  const resumeNote = (job: Job) => (offset: number) => {
    if (!options.quiet) process.stderr.write(`resuming at ${offset} bytes: ${printableName(job.name)}\n`);
  };

  if (jobs.length === 1) {
    const job = jobs[0]!;
    const bar = await progressBar(`${verb} ${printableName(job.name)}`, silentBars);
    const started = performance.now();
    const result = await withClient(options, (client) =>
      move(client, job, { onProgress: (p) => bar.update(p), onResume: resumeNote(job) }),
    ).finally(() => bar.stop());
    report(out, verb, job, result, performance.now() - started, options);
    return 0;
  }

  const totalBytes = jobs.reduce((sum, j) => sum + (j.size ?? 0), 0);
  const bar = await batchProgressBar(verb, jobs.length, totalBytes, silentBars);
  const parallel = parseParallel(options.parallel, jobs.length);
  let failures = 0;
  const fail = (job: Job | undefined, error: unknown): void => {
    failures++;
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`ferry: ${job ? `${printableName(job.name)}: ` : ''}${message}\n`);
  };
  try {
    await Promise.all(
      balance(jobs, parallel, (j) => j.size ?? 0).map(async (group) => {
        try {
          await withClient(options, async (client) => {
            const results = await runPool(group, PIPELINE_WINDOW, async (job) => {
              const started = performance.now();
              let last = 0;
              const result = await move(client, job, {
                onProgress: (p) => {
                  bar.bytes(p.bytes - last);
                  last = p.bytes;
                },
                onResume: resumeNote(job),
              });
              bar.fileDone();
              report(out, verb, job, result, performance.now() - started, options);
              return result;
            });
            results.forEach((r, i) => r.status === 'rejected' && fail(group[i], r.reason));
          });
        } catch (error) {
          // The connection itself failed: every file of this group that did not finish.
          fail(undefined, error);
        }
      }),
    );
  } finally {
    bar.stop();
  }
  if (failures > 0) process.stderr.write(`ferry: ${failures} of ${jobs.length} files failed\n`);
  return failures > 0 ? 1 : 0;
}

function parseParallel(text: string | undefined, jobs: number): number {
  if (text === undefined) return Math.min(DEFAULT_PARALLEL, jobs);
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new UsageError(`invalid --parallel "${text}": use an integer from 1 to 64`);
  return Math.min(n, jobs);
}

function report(
  out: NodeJS.WriteStream,
  verb: 'put' | 'get',
  job: Job,
  result: TransferResult,
  ms: number,
  options: { quiet?: boolean; json?: boolean },
): void {
  if (options.json) {
    const row = {
      name: result.name,
      local: job.local,
      size: result.size,
      sha256: result.sha256,
      mtime: result.mtime.toISOString(),
      resumedFrom: result.resumedFrom,
      seconds: Math.round(ms) / 1000,
    };
    out.write(`${JSON.stringify(row)}\n`);
  } else if (!options.quiet) {
    const what = verb === 'put' ? `stored ${printableName(result.name)}` : `saved ${job.local === '-' ? 'stdout' : job.local} from ${printableName(result.name)}`;
    const resumed = result.resumedFrom > 0 ? `, resumed at ${result.resumedFrom}` : '';
    out.write(`${what}  ${humanSize(result.size)}  sha256 ${result.sha256}  ${duration(ms)} (${rate(result.size - result.resumedFrom, ms)}${resumed})\n`);
  }
}
