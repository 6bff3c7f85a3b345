import { isFerryError } from '../client/index.js';

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
  if (isFerryError(error)) {
    process.stderr.write(`ferry: ${error.message}\n`);
    return ExitCode.FAILURE;
  }
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (typeof code === 'string') {
    process.stderr.write(`ferry: ${describeSystemError(code, message)}\n`);
    return ExitCode.FAILURE;
  }
  process.stderr.write(`ferry: unexpected error: ${message} (FERRY_DEBUG=1 shows details; please report it)\n`);
  return ExitCode.FAILURE;
}

function describeSystemError(code: string, message: string): string {
  const path = /'([^']+)'/.exec(message)?.[1];
  const subject = path ?? 'file';
  switch (code) {
    case 'ENOENT':
      return `no such file or folder: ${subject}`;
    case 'EACCES':
    case 'EPERM':
      return `permission denied: ${subject}`;
    case 'ENOSPC':
      return `no space left on the local disk while writing ${subject}`;
    case 'EISDIR':
      return `${subject} is a folder`;
    case 'ENOTDIR':
      return `a parent of ${subject} is not a folder`;
    case 'EEXIST':
      return `${subject} already exists`;
    default:
      return message;
  }
}
