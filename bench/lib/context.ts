// Shared state of one benchmark run.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sh } from './proc.js';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export interface Sizes {
  bigBytes: number;
  trees: Array<{ name: string; count: number; size: number }>;
  concurrentClients: number;
  concurrentBytes: number;
  reps: { big: number; tree: number; concurrent: number; durable: number };
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

/** A command as shown in RESULTS.md: temp dir as $T, the CLI as `ferry`, secrets masked. */
export function display(ctx: Ctx, cmd: string): string {
  let s = cmd.split(`${sh(process.execPath)} ${sh(ctx.ferryCli)}`).join('ferry');
  for (const [from, to] of ctx.redactions) s = s.split(from).join(to);
  return s;
}
