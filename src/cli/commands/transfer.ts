import { mkdirSync, readFileSync } from 'node:fs';
import { readSmallFile } from '../../io/small-file.js';
import path from 'node:path';
import { BATCH_GET_MAX_FILE, BatchBuilder, FerryError, GetBatchBuilder, LIST_PAGE, printableName, type BatchGetResult, type BatchPutOptions, type Entry, type FerryClient } from '../../client/index.js';
import { UsageError } from '../exit.js';
import { onInterrupt } from '../interrupt.js';
import { Feed, inLanes } from '../feed.js';
import { localPathFor, streamLocalTree } from '../local-tree.js';
import { ByteBudget } from '../byte-budget.js';
import { prepareFolder } from '../local-target.js';
import { cannotWrite, userMessage } from '../messages.js';
import { localState, NEW_FILE, placeFile, touchIdentical, type LocalState } from '../batch-get.js';
import { MAX_PARALLEL, parseCount } from '../numbers.js';
import { getOne, moveOneFile, putJob, putOne, report, resumeNote, singleGetDestination, storedCopy, type Hooks, type Outcome } from '../one-file.js';
import { batchProgressBar, progressBar } from '../progress.js';
import { withClient } from '../client-session.js';
import type { ClientOptions } from '../session.js';

// Moved to one-file.ts (shared with the quick path); still exported here for their users.
export { download, storedCopy, type Hooks, type Outcome } from '../one-file.js';

interface CommonOptions extends ClientOptions {
  quiet?: boolean;
  json?: boolean;
  /** false with --no-resume. */
  resume?: boolean;
  parallel?: string;
  recursive?: boolean;
  preserve?: boolean;
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
  /** The local file's modification time, when a tree walk already read it. */
  mtimeMs?: number;
  /** The stored file, when a listing already said what it is. */
  remote?: Entry;
  /** get -r: the local folder was created by this command, so nothing was at `local` (no lstat needed to know it). */
  inNewFolder?: boolean;
  /** Why this job cannot run, found while planning (a missing local file, a missing folder…). */
  problem?: unknown;
}

/**
 * The files of one command. `single`: exactly one file was named (no tree), moved alone with
 * its own bar; its failure is the command's error. Otherwise `jobs` streams them, produced as
 * the transfer asks (a tree is walked or listed as it is sent, never held whole); `listing`
 * is the client a remote tree is listed on, once one is connected.
 */
interface Plan {
  single?: Job;
  jobs(listing: () => Promise<FerryClient>): AsyncIterable<Job>;
  /** Count and bytes when known up front (no tree): the progress bar's totals. */
  known?: { files: number; bytes: number };
}

function planOf(jobs: Job[]): Plan {
  return {
    single: jobs.length === 1 ? jobs[0] : undefined,
    jobs: async function* () {
      yield* jobs;
    },
    known: { files: jobs.length, bytes: jobs.reduce((sum, j) => sum + (j.size ?? 0), 0) },
  };
}

/** Requests kept in flight per connection when many files move: enough to hide latency, few open files. */
const PIPELINE_WINDOW = 32;
/**
 * Files up to this size go to a protocol-5 server in batches (PUT_BATCH, many to a frame):
 * no round trip or frame of their own, and a few system calls each on the server.
 */
const SMALL_FILE_BYTES = 32 * 1024;
/**
 * Files per batch: with the window of batches per connection this bounds the files read ahead
 * (and held by the server) per connection to PIPELINE_WINDOW × 64.
 */
const BATCH_FILES = 64;
/**
 * File bytes one GET_BATCH may bring back (from the listing's sizes; a file of unknown size
 * counts as the largest a batch carries): with the window, at most PIPELINE_WINDOW × 256 KiB
 * of downloads are held in memory per connection.
 */
const GET_BATCH_BYTES = 256 * 1024;
/**
 * File bytes of GET_BATCHes one connection has asked for and not yet written out (counted as
 * for GET_BATCH_BYTES): 32 batches of 1 KiB files, or 8 of the largest. Without it the lanes
 * held up to PIPELINE_WINDOW × GET_BATCH_BYTES (8 MiB) a connection.
 */
const GET_BYTES_IN_FLIGHT = 2 * 1024 * 1024;
/** Connections used for many files unless --parallel says otherwise (see bench/RESULTS.md). */
export const DEFAULT_PARALLEL = 2;

export async function put(files: string[], options: PutCliOptions): Promise<number> {
  if (options.overwrite && options.rename) throw new UsageError('--overwrite and --rename exclude each other: give one of them');
  const plan = await planPuts(files, options);
  const resumable = options.resume !== false && files.some((f) => f !== '-');
  const batches: SmallFiles = {
    withMtime: options.preserve === true,
    // An identical file is skipped by the server; a different one is refused (EXISTS) unless
    // --overwrite or --rename says otherwise.
    options: { overwrite: options.overwrite, rename: options.rename, skipIdentical: true },
    sameAfterAll: async (client, job) => {
      const same = await storedCopy(client, job.name, job.local, job.size);
      return same === undefined ? undefined : { skipped: true, entry: same };
    },
  };
  return transfer('put', plan, options, resumable, batches, undefined, (client, job, hooks) => putOne(client, job, options, hooks));
}

export async function get(names: string[], options: GetCliOptions): Promise<number> {
  const plan = await planGets(names, options);
  const resumable = options.resume !== false && options.output !== '-';
  const smallGets: SmallGets = { preserve: options.preserve === true };
  return transfer('get', plan, options, resumable, undefined, smallGets, (client, job, hooks) => getOne(client, job, options, hooks));
}

async function planPuts(files: string[], options: PutCliOptions): Promise<Plan> {
  if (options.as !== undefined && (files.length !== 1 || options.recursive)) {
    throw new UsageError('--as names one file: give exactly one FILE without -r');
  }
  // Each argument is looked at now (a usage error comes before any transfer); folders are
  // walked later, as their files are sent.
  const named: (Job | { tree: string; base: string })[] = [];
  for (const file of files) named.push(await putJob(file, options));
  const plain = named.filter((n): n is Job => !('tree' in n));
  if (plain.length === named.length) return planOf(plain);
  const warn = (warning: string): boolean => process.stderr.write(`ferry: warning: ${warning}\n`);
  return {
    jobs: async function* () {
      for (const item of named) {
        if (!('tree' in item)) {
          yield item;
          continue;
        }
        for await (const file of streamLocalTree(item.tree, warn)) {
          yield { name: `${item.base}/${file.relative}`, local: file.path, size: file.size, mtimeMs: file.mtimeMs };
        }
      }
    },
  };
}

async function planGets(names: string[], options: GetCliOptions): Promise<Plan> {
  const toStdout = options.output === '-';
  if (toStdout && (names.length !== 1 || options.recursive)) throw new UsageError('-o - writes one file to stdout: give exactly one NAME without -r');
  if (options.recursive) return planTreeGets(names, options);
  if (names.length === 1) {
    const name = names[0]!;
    return planOf([{ name, local: await singleGetDestination(name, options.output), size: undefined }]);
  }
  const folder = options.output ?? '.';
  await prepareFolder(folder);
  return planOf(names.map((name) => ({ name, local: path.join(folder, name.split('/').pop() ?? name), size: undefined })));
}

/**
 * get -r: every file under each NAME, each at its place under the destination folder. The
 * remote tree is listed one folder at a time as the files are fetched (never whole), on the
 * first connection of the transfer.
 */
async function planTreeGets(names: string[], options: GetCliOptions): Promise<Plan> {
  const root = options.output;
  if (root !== undefined && names.length > 1) await prepareFolder(root);
  return {
    jobs: async function* (listing) {
      const client = await listing();
      for (const name of names) {
        const prefix = name.replace(/\/+$/, '');
        const base = prefix.split('/').pop() ?? prefix;
        const destination = root === undefined ? base : names.length > 1 ? path.join(root, base) : root;
        let found = false;
        // Folders inside each destination are the tree's own: created as needed. A listing
        // brings each remote folder's files in a row, so the local folder of the last one is
        // remembered: its other files' paths need no resolving (their names were checked on
        // arrival: a plain last component; on POSIX only, where no character of one is special
        // to path.resolve), and whether mkdir created it says that nothing was at them.
        let last: { parent: string; folder: string; created: boolean } | undefined;
        for await (const entry of remoteTree(client, prefix)) {
          const slash = entry.name.lastIndexOf('/');
          let local: string | undefined;
          if (POSIX_PATHS && last !== undefined && entry.name.length > last.parent.length && entry.name.startsWith(last.parent) && slash === last.parent.length - 1) {
            local = `${last.folder}${path.sep}${entry.name.slice(slash + 1)}`;
          } else {
            local = localPathFor(destination, prefix, entry.name);
            if (local === undefined) {
              throw new FerryError('PROTOCOL', `server sent "${printableName(entry.name)}", which is outside "${printableName(prefix)}": refusing to write it`);
            }
            if (!found) {
              found = true;
              await prepareFolder(destination);
            }
            const folder = path.dirname(local);
            last = { parent: entry.name.slice(0, slash + 1), folder, created: mkdirSync(folder, { recursive: true }) !== undefined };
          }
          yield { name: entry.name, local, size: entry.size, remote: entry, inNewFolder: last.created };
        }
        if (!found) yield { name: prefix, local: destination, size: undefined, problem: new FerryError('NOT_FOUND', `no folder named "${printableName(prefix)}"`) };
      }
    },
  };
}

/** Whether local paths are POSIX ones ('/' the only separator, no drive letters). */
const POSIX_PATHS = path.sep === '/';

/** Folder listings (pages, from protocol 7) requested ahead of the one being fetched, so lanes never wait at a folder's end. */
const LIST_AHEAD = 4;

/**
 * Every file under `prefix`, one folder's listing at a time (breadth first: the order files
 * come in does not matter), with the next LIST_AHEAD listings already requested. From protocol
 * 7 each folder is listed in pages of LIST_PAGE entries (a folder's next page is asked for
 * first), so at most LIST_AHEAD pages of entries are held, and the names of the folders still
 * to list; an older server lists each folder whole.
 */
async function* remoteTree(client: FerryClient, prefix: string): AsyncGenerator<Entry> {
  const paged = client.version >= 7;
  const toList: { folder: string; after: string }[] = [{ folder: prefix, after: '' }];
  const listings: { folder: string; entries: Promise<Entry[]> }[] = [];
  const requestAhead = (): void => {
    while (listings.length < LIST_AHEAD && toList.length > 0) {
      const { folder, after } = toList.shift()!;
      const entries = paged ? client.listPage(folder, { after, limit: LIST_PAGE }) : client.list(folder, { recursive: false });
      entries.catch(() => undefined); // awaited in turn, or abandoned with the walk
      listings.push({ folder, entries });
    }
  };
  requestAhead();
  while (listings.length > 0) {
    const { folder, entries: listing } = listings.shift()!;
    const entries = await listing;
    if (paged && entries.length === LIST_PAGE) toList.unshift({ folder, after: entries[entries.length - 1]!.name });
    for (const entry of entries) if (entry.kind === 'folder') toList.push({ folder: entry.name, after: '' });
    requestAhead();
    for (const entry of entries) if (entry.kind === 'file') yield entry;
  }
}

/** How `put` sends small files to a protocol-5 server: many to a PUT_BATCH. */
interface SmallFiles {
  /** -p: each file carries its modification time. */
  withMtime: boolean;
  options: BatchPutOptions;
  /** A file the server refused with EXISTS: skipped if it holds the same bytes after all (no digest record to compare). */
  sameAfterAll(client: FerryClient, job: Job): Promise<Outcome | undefined>;
}

/** Whether `job` travels in a batch on `client`. */
function batchable(client: FerryClient, job: Job, small: SmallFiles): boolean {
  return (
    client.version >= 5 && job.local !== '-' && job.size !== undefined && job.size <= SMALL_FILE_BYTES && BatchBuilder.carries(job.name, job.size, small.withMtime)
  );
}

/** How `get` fetches small files from a protocol-6 server: many to a GET_BATCH. */
interface SmallGets {
  /** -p: each file keeps the stored modification time. */
  preserve: boolean;
}

/** Whether `job` may travel in a GET_BATCH on `client` (the server answers LARGE for a file that grew). */
function getBatchable(client: FerryClient, job: Job): boolean {
  return client.version >= 6 && job.local !== '-' && (job.size === undefined || job.size <= BATCH_GET_MAX_FILE);
}

/**
 * Moves every job: over --parallel connections, each pipelining up to PIPELINE_WINDOW
 * requests. Jobs are taken from the plan's stream as lanes free up, so the walk (or listing)
 * is never more than the window ahead, and only counts are kept. Prints one line (or JSON
 * object) per file and one line per failure; returns the exit code. A single named file's
 * failure is thrown, so it prints as the command's one error line. Ctrl-C restores the
 * terminal and says how to continue.
 */
async function transfer(
  verb: 'put' | 'get',
  plan: Plan,
  options: CommonOptions,
  resumable: boolean,
  small: SmallFiles | undefined,
  smallGets: SmallGets | undefined,
  move: (client: FerryClient, job: Job, hooks: Hooks) => Promise<Outcome>,
): Promise<number> {
  const parallel = options.parallel === undefined ? DEFAULT_PARALLEL : parseCount(options.parallel, '--parallel', 1, MAX_PARALLEL);
  if (plan.single?.problem !== undefined) throw plan.single.problem;
  if (plan.single) {
    const single = plan.single;
    return moveOneFile<FerryClient>(verb, single, options, resumable, progressBar, (work) => withClient(options, work), (client, hooks) => move(client, single, hooks));
  }
  const out = process.stdout;
  const silentBars = options.quiet || options.json;
  let stopBar = (): void => undefined;
  const removeInterrupt = onInterrupt({
    cleanup: () => stopBar(),
    hint: () => (resumable ? 'run the same command again to resume' : undefined),
  });
  try {
    let failures = 0;
    const fail = (job: Job | undefined, error: unknown, count = 1): void => {
      failures += count;
      process.stderr.write(`ferry: ${job ? `${printableName(job.name)}: ` : ''}${userMessage(error)}\n`);
    };
    const bar = await batchProgressBar(verb, plan.known?.files ?? 0, plan.known?.bytes ?? 0, silentBars);
    stopBar = () => bar.stop();
    let connected!: (client: FerryClient) => void;
    let unreachable!: (error: unknown) => void;
    const listing = new Promise<FerryClient>((resolve, reject) => ((connected = resolve), (unreachable = reject)));
    listing.catch(() => undefined);
    const feed = new Feed(plan.jobs(() => listing));
    let connectionError: unknown;
    try {
      await Promise.all(
        Array.from({ length: parallel }, async () => {
          try {
            await withClient(options, async (client) => {
              connected(client);
              // A lane stops taking jobs once this connection has failed: the others take them.
              let lost = false;
              const take = async (): Promise<Job | undefined> => {
                for (;;) {
                  const job = await feed.next();
                  if (job === undefined) return undefined;
                  if (plan.known === undefined) bar.found(1, job.size ?? 0);
                  if (job.problem === undefined) return job;
                  fail(job, job.problem);
                }
              };
              const settle = (job: Job, outcome: Outcome, ms: number): void => {
                bar.fileDone();
                report(out, verb, job, outcome, ms, options);
              };
              const failed = (job: Job, error: unknown): void => {
                fail(job, error);
                if (error instanceof FerryError && error.fatal) lost = true;
              };
              /**
               * Small uploads gather in one PUT_BATCH per connection, filled by every lane (the
               * feed deals files out to the lanes in turn: a batch per lane filled only once 32
               * lanes × 64 files had been walked, so sending waited for the walk); the lane that
               * fills it sends it.
               */
              let putsGathered: Job[] = [];
              let putsBatch = small === undefined ? undefined : new BatchBuilder(small.withMtime, BATCH_FILES);
              let putsSince = 0;
              const flushPuts = async (small: SmallFiles): Promise<void> => {
                if (putsGathered.length === 0) return;
                const jobs = putsGathered;
                const files = putsBatch!.files;
                const started = putsSince;
                putsGathered = [];
                putsBatch = new BatchBuilder(small.withMtime, BATCH_FILES);
                let results;
                try {
                  results = await client.putBatch(files, small.options);
                } catch (error) {
                  for (const job of jobs) failed(job, error);
                  return;
                }
                const ms = performance.now() - started;
                for (const [i, result] of results.entries()) {
                  const job = jobs[i]!;
                  if (result.status === 'stored') {
                    bar.bytes(result.result.size);
                    settle(job, { skipped: false, result: result.result }, ms);
                  } else if (result.status === 'identical') {
                    settle(job, { skipped: true, entry: result.entry }, ms);
                  } else {
                    const same = result.error.code === 'EXISTS' ? await small.sameAfterAll(client, job).catch(() => undefined) : undefined;
                    if (same) settle(job, same, ms);
                    else failed(job, result.error);
                  }
                }
              };
              /** One small upload, read now and added to the batch (alone if it grew past what a batch carries). */
              const gatherPut = async (job: Job, small: SmallFiles): Promise<void> => {
                let data: Buffer;
                try {
                  data = job.size === undefined ? readFileSync(job.local) : readSmallFile(job.local, job.size);
                } catch (error) {
                  fail(job, new FerryError('LOCAL_IO', `cannot read ${job.local}: ${userMessage(error)}`));
                  return;
                }
                if (!putsBatch!.fits(job.name, data.length)) await flushPuts(small);
                if (!putsBatch!.fits(job.name, data.length)) {
                  job.size = data.length;
                  return moveOne(job);
                }
                if (putsGathered.length === 0) putsSince = performance.now();
                putsBatch!.add({ name: job.name, data, mtimeMs: small.withMtime ? job.mtimeMs : undefined });
                putsGathered.push(job);
                if (!putsBatch!.fits('', 0)) await flushPuts(small);
              };
              /** One file on its own (GET or PUT with a body). */
              const moveOne = async (job: Job): Promise<void> => {
                const started = performance.now();
                let last = 0;
                try {
                  const outcome = await move(client, job, {
                    onProgress: (p) => {
                      bar.bytes(p.bytes - last);
                      last = p.bytes;
                    },
                    onResume: resumeNote(job, options),
                  });
                  settle(job, outcome, performance.now() - started);
                } catch (error) {
                  failed(job, error);
                }
              };
              /**
               * Small downloads gather in one GET_BATCH per connection, filled by every lane (the
               * feed deals files out to the lanes in turn, so a batch per lane would stay small);
               * the lane that fills it sends it and puts each verified file in place.
               */
              const getsInFlight = new ByteBudget(GET_BYTES_IN_FLIGHT);
              let gathering: { job: Job; state: LocalState }[] = [];
              let gatheringNames = new GetBatchBuilder(BATCH_FILES);
              let gatheringBytes = 0;
              let gatheringSince = 0;
              /** Sends what has gathered (if anything) and places the files; files too large for a batch go alone. */
              const flushGets = async (gets: SmallGets): Promise<void> => {
                if (gathering.length === 0) return;
                const asked = gathering;
                const names = gatheringNames.names;
                const started = gatheringSince;
                const bytes = gatheringBytes;
                gathering = [];
                gatheringNames = new GetBatchBuilder(BATCH_FILES);
                gatheringBytes = 0;
                // Sent once the connection's downloads in flight leave room (the lanes gather on meanwhile).
                const release = await getsInFlight.take(bytes);
                let results: BatchGetResult[];
                try {
                  results = await client.getBatch(names);
                } catch (error) {
                  release();
                  for (const { job } of asked) failed(job, error);
                  return;
                }
                const ms = performance.now() - started;
                const alone: Job[] = [];
                for (const [i, result] of results.entries()) {
                  const { job, state } = asked[i]!;
                  if (result.status === 'large') {
                    alone.push(job);
                  } else if (result.status === 'refused') {
                    failed(job, result.error);
                  } else {
                    try {
                      placeFile(job.local, result.data, result.result, state, gets.preserve);
                      bar.bytes(result.result.size);
                      settle(job, { skipped: false, result: result.result }, ms);
                    } catch (error) {
                      failed(job, cannotWrite(job.local, error));
                    }
                  }
                }
                release();
                for (const job of alone) {
                  if (lost) fail(job, new FerryError('CLOSED', 'not fetched: the connection was lost'));
                  else await moveOne(job);
                }
              };
              /**
               * One small download: left alone if the destination already holds it, fetched alone
               * if something other than a regular file is in the way, else added to the batch.
               */
              const gatherGet = async (job: Job, gets: SmallGets): Promise<void> => {
                const size = job.size ?? BATCH_GET_MAX_FILE;
                let state: LocalState;
                try {
                  // In a folder this command created, nothing was there before (a file another program
                  // puts there meanwhile is still never replaced: placeFile's link fails).
                  state = job.inNewFolder === true ? NEW_FILE : localState(job.local, job.remote);
                  // Without a listing, an existing file is compared with the stored one by the single-file path.
                  if (state.kind === 'replace' && job.remote === undefined) state = { kind: 'other' };
                  if (state.kind === 'identical') {
                    if (gets.preserve) touchIdentical(job.local, job.remote!);
                    settle(job, { skipped: true, entry: job.remote! }, 0);
                    return;
                  }
                } catch (error) {
                  failed(job, cannotWrite(job.local, error));
                  return;
                }
                if (state.kind === 'other') return moveOne(job);
                if (!gatheringNames.fits(job.name) || gatheringBytes + size > GET_BATCH_BYTES) await flushGets(gets);
                if (gathering.length === 0) gatheringSince = performance.now();
                gatheringNames.add(job.name);
                gathering.push({ job, state });
                gatheringBytes += size;
                if (!gatheringNames.fits('') || gatheringBytes >= GET_BATCH_BYTES) await flushGets(gets);
              };
              await inLanes(PIPELINE_WINDOW, async () => {
                while (!lost) {
                  const job = await take();
                  if (job === undefined) {
                    // The feed is done: what has gathered goes now (every lane ends here).
                    if (small !== undefined) await flushPuts(small);
                    if (smallGets !== undefined) await flushGets(smallGets);
                    return;
                  }
                  if (small !== undefined && batchable(client, job, small)) {
                    await gatherPut(job, small);
                    continue;
                  }
                  if (smallGets !== undefined && getBatchable(client, job)) {
                    await gatherGet(job, smallGets);
                    continue;
                  }
                  await moveOne(job);
                }
              });
              for (const job of putsGathered.splice(0)) fail(job, new FerryError('CLOSED', 'not sent: the connection was lost'));
              for (const { job } of gathering.splice(0)) fail(job, new FerryError('CLOSED', 'not fetched: the connection was lost'));
            });
          } catch (error) {
            connectionError = error;
          }
        }),
      );
      if (!feed.done) {
        // Every connection failed: what is left cannot move (one line for all of it).
        unreachable(connectionError);
        let left = 0;
        while ((await feed.next()) !== undefined) left++;
        if (left > 0) fail(undefined, connectionError, left);
        else if (feed.taken === 0 && feed.failure === connectionError) throw connectionError;
      }
      if (feed.failure !== undefined && feed.failure !== connectionError) {
        // A walk or listing that failed before any file: the command's one error line.
        if (feed.taken === 0 && failures === 0) throw feed.failure;
        fail(undefined, feed.failure);
      }
    } finally {
      bar.stop();
      await feed.close();
    }
    if (feed.taken === 0 && failures === 0) {
      if (!options.quiet) process.stderr.write(`ferry: nothing to ${verb}\n`);
      return 0;
    }
    if (failures > 0) process.stderr.write(`ferry: ${failures} of ${Math.max(feed.taken, failures)} files failed\n`);
    return failures > 0 ? 1 : 0;
  } finally {
    removeInterrupt();
  }
}
