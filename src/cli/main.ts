#!/usr/bin/env node
import { CommanderError } from 'commander';
import { ExitCode, reportError } from './exit.js';
import { allCommands, buildProgram } from './program.js';
import { exitOnceFlushed, exitQuietlyOnClosedPipe } from './run.js';

// The full CLI (dist/bin/cli/main.mjs): the launcher answers --version, and `ls` and `stat` in
// their plain forms (quick.ts), itself; everything else comes here.

async function main(): Promise<void> {
  exitQuietlyOnClosedPipe(process.stdout);
  let exitCode: number = ExitCode.OK;
  const program = buildProgram((code) => (exitCode = code));
  program.exitOverride();
  for (const command of allCommands(program)) command.exitOverride();
  try {
    await program.parseAsync(process.argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      const ok = error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help';
      exitCode = ok ? ExitCode.OK : ExitCode.USAGE;
    } else {
      exitCode = reportError(error);
    }
  }
  exitOnceFlushed(exitCode);
}

void main();
