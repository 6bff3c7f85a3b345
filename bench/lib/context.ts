// Shared state of one benchmark run.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sh } from './proc.js';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export interface Sizes {
  bigBytes: number;
  trees: Array<{ name: string; count: number; size: number }>;
  /** The opt-in many-files tree (100,000 × 1 KiB): ferry's RSS there is an issue-12 target. */
  manyFilesTree: { name: string; count: number; size: number };
  concurrentClients: number;
  concurrentBytes: number;
  reps: { big: number; tree: number; manyFiles: number; concurrent: number; durable: number };
  coldRuns: number;
}

export interface Ctx {
  /** Temp base dir of this run (removed at the end). */
  T: string;
  mode: 'full' | 'quick';
  sizes: Sizes;
  /** The repository root (…/dist/bench/lib → …). */
  repo: string;
  /** Absolute path of the ferry CLI entry (dist/bin/cli/main.js, the package's bin). */
  ferryCli: string;
  /** Extra flags for every timed or seeding `ferry put`/`ferry get` (--ferry-client-args). */
  ferryClientArgs: string[];
  /** Extra flags for every `ferry serve` (--ferry-server-args). */
  ferryServerArgs: string[];
  /** Notes that go into RESULTS.md (fallbacks, skipped peers, …). */
  notes: string[];
  /** Secrets and paths to replace when showing commands. */
  redactions: Array<[string, string]>;
  log(msg: string): void;
}

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '..', '..', '..');
export const FERRY_CLI = path.join(REPO, 'dist', 'bin', 'cli', 'main.js'); // the installed `ferry` bin

/** `node …/dist/bin/cli/main.js ARGS` as a shell string. */
export function ferryCmd(ctx: Ctx, args: string[]): string {
  return [process.execPath, ctx.ferryCli, ...args].map(sh).join(' ');
}

/**
 * A `ferry put`/`ferry get` against server `s`: its address, what TLS needs (the pinned
 * fingerprint) and the run's extra client flags.
 */
export function ferryTransferCmd(ctx: Ctx, s: { addr: string; clientArgs: string[] }, args: string[]): string {
  return ferryCmd(ctx, [...args, '-s', s.addr, ...s.clientArgs, ...ctx.ferryClientArgs]);
}

/** A command as shown in RESULTS.md: temp dir as $T, the CLI as `ferry`, secrets masked. */
export function display(ctx: Ctx, cmd: string): string {
  let s = cmd.split(`${sh(process.execPath)} ${sh(ctx.ferryCli)}`).join('ferry');
  for (const [from, to] of ctx.redactions) s = s.split(from).join(to);
  return s;
}
