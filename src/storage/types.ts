import type { Clock } from '../clock.js';
import type { DigestAlgorithm } from '../io/digest.js';
import type { Activity } from './activity.js';
import type { DigestCache } from './digest-cache.js';
import type { NameLocks } from './locks.js';
import type { PartialStore } from './partials.js';
import type { Folder, FolderSyncs, SafeRoot } from './safe-path.js';
import type { SpaceLedger } from './space.js';

export interface StoredEntry {
  name: string;
  kind: 'file' | 'folder';
  size: number;
  mtimeMs: number;
  /** In the algorithm the caller asked for (all zero for a folder). */
  digest: Buffer;
}

export interface StoreOptions {
  /** Largest file accepted, in bytes. */
  maxFileSize?: number;
  /** Total bytes the root may hold (stored files, uploads in progress, kept partials). */
  quota?: number;
  /** fsync file and folder before a commit is acknowledged (default true). */
  fsync?: boolean;
  /** How long an interrupted upload is kept for resuming (default 24 h). */
  partialTtlMs?: number;
  /** Most interrupted uploads kept at once (default 1000); the oldest go first. */
  maxPartials?: number;
  /**
   * Most bytes kept in interrupted uploads (default: half the quota, or without one half the
   * disk space free at start); the oldest go first.
   */
  maxPartialBytes?: number;
  /** Time for partial-upload expiry (default the system clock). */
  clock?: Clock;
  /**
   * Reach folders through /proc/self/fd where the system has it (default true); false forces
   * the portable lstat-and-check walk (for tests of that path).
   */
  pinFolders?: boolean;
}

export interface UploadOptions {
  overwrite?: boolean;
  /** On a clash, store as "name (1).ext", "name (2).ext", … instead of failing. */
  rename?: boolean;
  /** Declared size, checked against the limit up front; undefined when unknown. */
  size?: number;
  /** Continue the partial kept from an interrupted upload of this name and size, if any. */
  resume?: boolean;
  /** Modification time to give the stored file (ms since the epoch), instead of the commit's. */
  mtimeMs?: number;
  /** The algorithm the upload is verified with and its digest recorded in (default sha256). */
  algorithm?: DigestAlgorithm;
}

export interface ListOptions {
  /** A prefix naming no folder: an empty listing (protocol 2's behaviour, the default) or NOT_FOUND. */
  missing?: 'empty' | 'error';
  /** The algorithm of the entries' digests (default sha256). */
  algorithm?: DigestAlgorithm;
}

/** The parts of one store, shared by its reading, upload and removal modules. */
export interface StoreParts {
  root: SafeRoot;
  /** `.ferry/tmp`: uploads in progress. */
  tmp: Folder;
  digests: DigestCache;
  ledger: SpaceLedger;
  partials: PartialStore;
  locks: NameLocks;
  syncs: FolderSyncs;
  clock: Clock;
  activity: Activity;
  fsync: boolean;
  maxFileSize: number;
}
