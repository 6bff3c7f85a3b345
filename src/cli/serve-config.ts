import type { Command } from 'commander';
import type { ServeOptions } from './commands/serve.js';
import { applyConfigFile } from './config.js';
import { ExitCode } from './exit.js';

/**
 * `ferry serve`: the command-line flags, completed from `--config FILE`, then checked
 * (`--check`) or served. Every problem in the file is printed (one line each) before giving
 * up, not just the first.
 */
export async function serveWithConfig(command: Command): Promise<number> {
  const problems = applyConfigFile(command);
  const options = command.opts<ServeOptions>();
  if (options.check) {
    const { checkConfiguration } = await import('./check.js');
    return checkConfiguration(command, problems);
  }
  if (problems.length > 0) {
    for (const problem of problems) process.stderr.write(`ferry: ${problem}\n`);
    return ExitCode.USAGE;
  }
  const { serve } = await import('./commands/serve.js');
  await serve(options);
  return ExitCode.OK;
}
