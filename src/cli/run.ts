import { ExitCode } from './exit.js';

/** A reader that stops early (`ferry ls | head`) is not an error: stop quietly. */
export function exitQuietlyOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? ExitCode.OK);
    throw error;
  });
}

/**
 * The command is over: leave once stdout and stderr are written out, whatever may still hold
 * the event loop (a stdin pipe nobody reads, a library worker or socket left behind on an
 * error path). A finished command never lingers.
 */
export function exitOnceFlushed(code: number): void {
  process.exitCode = code;
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}
