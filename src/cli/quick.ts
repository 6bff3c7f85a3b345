import { ls, stat } from './commands/files.js';
import { ExitCode, reportError } from './exit.js';
import { parseQuickCommand } from './quick-args.js';
import { exitOnceFlushed, exitQuietlyOnClosedPipe } from './run.js';

/**
 * `ferry ls` and `ferry stat` without commander or the ES module loader: the launcher
 * (dist/bin/cli/main.js) requires this file, bundled as CommonJS, for those commands. Returns
 * false when the command line needs the full CLI (help, mistakes, anything unusual).
 */
export function run(args: readonly string[]): boolean {
  const command = parseQuickCommand(args);
  if (command === undefined) return false;
  exitQuietlyOnClosedPipe(process.stdout);
  const work = command.name === 'ls' ? ls(command.prefix, command.options) : stat(command.file, command.options);
  work.then(
    () => exitOnceFlushed(ExitCode.OK),
    (error: unknown) => exitOnceFlushed(reportError(error)),
  );
  return true;
}
