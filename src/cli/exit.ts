import { isFerryError } from '../errors.js';
import { userMessage } from './messages.js';

export const ExitCode = { OK: 0, FAILURE: 1, USAGE: 2 } as const;

/** A mistake in how the command was called: printed as one line, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * Prints an error as one line on stderr and returns the exit code. Expected errors (ferry's
 * own, usage, local I/O) never show a stack trace; set FERRY_DEBUG=1 to see one anyway.
 */
export function reportError(error: unknown): number {
  if (process.env.FERRY_DEBUG) console.error(error);
  if (error instanceof UsageError) {
    process.stderr.write(`ferry: ${error.message} (see --help)\n`);
    return ExitCode.USAGE;
  }
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (isFerryError(error) || typeof code === 'string') {
    process.stderr.write(`ferry: ${userMessage(error)}\n`);
    return ExitCode.FAILURE;
  }
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`ferry: unexpected error: ${message} (FERRY_DEBUG=1 shows details; please report it)\n`);
  return ExitCode.FAILURE;
}
