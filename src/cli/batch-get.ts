import { randomBytes } from 'node:crypto';
import { closeSync, constants, fchmodSync, futimesSync, linkSync, lstatSync, openSync, readFileSync, renameSync, unlinkSync, utimesSync, writeSync, type Stats } from 'node:fs';
import path from 'node:path';
import { FerryError, type Entry, type TransferResult } from '../client/index.js';
import { linkUnsupported } from '../client/download-lock.js';
import { digestOf } from '../io/digest.js';
import { mtimeSeconds } from '../io/file-times.js';

/**
 * The local side of `get` for files that came in a batch (GET_BATCH, already verified in
 * memory): each is written to a temporary of its own in its destination folder and put in
 * place by the rules a single download follows (download-target.ts) — a new path with
 * link(2), which never replaces a file another program put there meanwhile; an existing
 * regular file only if it is still the one seen before the request (same inode, size and
 * mtime), keeping its mode. No `.ferry-lock` is needed: the temporary is unique (O_EXCL,
 * random name) and nothing is resumed from a shared `.ferry-part`, so two downloads to the
 * same path can only each place a whole, verified file, and the rules above decide which.
 * Synchronous on purpose: a few small system calls per file, no thread-pool round trips.
 */

/** What is at a destination before its file is asked for. */
export type LocalState =
  /** Nothing: the file is created. */
  | { kind: 'new' }
  /** A regular file with other bytes: replaced if unchanged when the download lands. */
  | { kind: 'replace'; before: Stats }
  /** Already holds the stored file's bytes: left alone. */
  | { kind: 'identical' }
  /** A link, FIFO, device or folder: the single-file path decides (follows links, writes into FIFOs, refuses folders). */
  | { kind: 'other' };

/** Nothing at the destination. */
export const NEW_FILE: LocalState = Object.freeze({ kind: 'new' });

/** Looks at `local` for the stored file `remote` (from the listing): new, to replace, identical, or other. */
export function localState(local: string, remote: Entry | undefined): LocalState {
  const stats = lstatSync(local, { throwIfNoEntry: false });
  if (stats === undefined) return NEW_FILE;
  if (!stats.isFile()) return { kind: 'other' };
  if (remote !== undefined && remote.kind === 'file' && remote.size === stats.size && digestOf(remote.algorithm, readFileSync(local)).toString('hex') === remote.digest) {
    return { kind: 'identical' };
  }
  return { kind: 'replace', before: stats };
}

/** -p on a file left alone: it takes the stored file's modification time. */
export function touchIdentical(local: string, remote: Entry): void {
  utimesSync(local, new Date(), mtimeSeconds(remote.mtime.getTime()));
}

/**
 * Puts a verified download in place at `local` (see above); `preserve`: it keeps the stored
 * mtime. System errors are thrown as they are (cannotWrite words them, naming `local`).
 */
export function placeFile(local: string, data: Buffer, result: TransferResult, state: LocalState, preserve: boolean): void {
  const { temp, fd } = createTemporary(path.dirname(local));
  let placed = false;
  try {
    try {
      for (let written = 0; written < data.length; ) written += writeSync(fd, data, written, data.length - written);
      if (state.kind === 'replace') fchmodSync(fd, state.before.mode & 0o7777); // like cp: the replaced file's mode
      if (preserve) futimesSync(fd, new Date(), mtimeSeconds(result.mtime.getTime()));
    } finally {
      closeSync(fd);
    }
    if (state.kind === 'replace') {
      const now = lstatSync(local, { throwIfNoEntry: false });
      if (now !== undefined && !sameFile(state.before, now)) throw changedMeanwhile(local, 'changed');
      renameSync(temp, local);
      placed = true;
    } else {
      placeNew(temp, local);
    }
  } finally {
    if (!placed) unlinkIfThere(temp);
  }
}

/** This process's temporaries: `.ferry-batch-<random>-<n>.tmp`, created with O_EXCL (a clash takes the next number). */
const temporaryPrefix = `.ferry-batch-${randomBytes(6).toString('hex')}-`;
let temporaryCount = 0;

function createTemporary(folder: string): { temp: string; fd: number } {
  for (;;) {
    const temp = `${folder}${path.sep}${temporaryPrefix}${temporaryCount++}.tmp`;
    try {
      return { temp, fd: openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}

function unlinkIfThere(file: string): void {
  try {
    unlinkSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** A new path: link(2) fails if anything appeared there meanwhile (check-then-rename where links are missing). */
function placeNew(temp: string, local: string): void {
  try {
    linkSync(temp, local);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw changedMeanwhile(local, 'appeared');
    if (!linkUnsupported(code)) throw error;
    if (lstatSync(local, { throwIfNoEntry: false }) !== undefined) throw changedMeanwhile(local, 'appeared');
    renameSync(temp, local);
  }
}

function sameFile(a: Stats, b: Stats): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

function changedMeanwhile(local: string, how: 'appeared' | 'changed'): FerryError {
  return new FerryError('LOCAL_IO', `${local} ${how} during the download (written by another program): not replaced; run the command again to replace it`);
}
