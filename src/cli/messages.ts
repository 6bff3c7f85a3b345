import { FerryError, isFerryError } from '../errors.js';

/**
 * What a failure says to a user, in the CLI's own terms: the real flag (`--overwrite`, or `-f`
 * in the shell) and the user's own paths (never a `.ferry-part` temporary). The library's and
 * server's wording is mapped here where it names internals.
 */
export type Surface = 'cli' | 'shell';

const PART_SUFFIX = '.ferry-part';

export function userMessage(error: unknown, surface: Surface = 'cli'): string {
  if (isFerryError(error)) {
    const message = error.message;
    if (error.code === 'EXISTS') {
      const name = /^("(?:[^"\\]|\\.)*")/.exec(message)?.[1];
      if (name !== undefined) {
        return surface === 'shell' ? `${name} already exists: use put -f to replace it` : `${name} already exists: use --overwrite to replace it, or --rename to keep both`;
      }
    }
    const parentIsFile = /^"(.*)": a parent of it is a file$/.exec(message);
    if (error.code === 'CONFLICT' && parentIsFile) {
      return `cannot store "${parentIsFile[1]}": a folder on its path is already a stored file`;
    }
    return withoutTemporaries(message);
  }
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (typeof code === 'string') return describeSystemError(code, message, (error as NodeJS.ErrnoException).path);
  return message;
}

/** "…/x.ferry-part" → "…/x": the user asked for x. */
function withoutTemporaries(text: string): string {
  return text.split(PART_SUFFIX).join('');
}

export function describeSystemError(code: string, message: string, file?: string): string {
  const found = file ?? /'([^']+)'/.exec(message)?.[1];
  const subject = found === undefined ? 'file' : withoutTemporaries(found);
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
    case 'EROFS':
      return `${subject} is on a read-only file system`;
    default:
      return withoutTemporaries(message);
  }
}

const WRITE_REASONS: Record<string, string> = {
  ENOENT: 'no such file or folder',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENOSPC: 'no space left on the device',
  EROFS: 'read-only file system',
  EISDIR: 'it is a folder',
  ENOTDIR: 'a folder on its path is a file',
};

/** A local I/O failure while writing `local` (also when the library wrapped it), named by the user's path. */
export function cannotWrite(local: string, error: unknown): unknown {
  const own = error as NodeJS.ErrnoException | undefined;
  const cause = isFerryError(error) ? (error.cause as NodeJS.ErrnoException | undefined) : own;
  if (isFerryError(error) && error.code !== 'LOCAL_IO') return error;
  const code = cause?.code;
  if (typeof code !== 'string') return error;
  return new FerryError('LOCAL_IO', `cannot write ${local}: ${WRITE_REASONS[code] ?? withoutTemporaries(cause!.message)}`, { cause: error });
}
