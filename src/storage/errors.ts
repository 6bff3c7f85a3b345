import { FerryError } from '../errors.js';
import { nameProblem } from '../protocol/names.js';
import { isCode } from './safe-path.js';

/** Throws BAD_NAME unless `name` is acceptable (PROTOCOL.md "Names"). */
export function checkName(name: string): void {
  const problem = nameProblem(name);
  if (problem !== undefined) throw new FerryError('BAD_NAME', `bad name: ${problem}`);
}

/** Turns the file-system errors a client can cause into protocol errors. */
export function mapFsError(error: unknown): unknown {
  if (error instanceof FerryError) return error;
  if (isCode(error, 'ENOSPC')) return new FerryError('NO_SPACE', 'the server is out of disk space', { cause: error });
  if (isCode(error, 'EDQUOT')) return new FerryError('QUOTA', 'the server is over its disk quota', { cause: error });
  if (isCode(error, 'ENAMETOOLONG')) return new FerryError('BAD_NAME', 'name too long for the server', { cause: error });
  if (isCode(error, 'EMFILE') || isCode(error, 'ENFILE')) {
    return new FerryError('BUSY', 'the server has too many files open: try again shortly', { cause: error });
  }
  return error;
}
