import { FerryError, printableName } from '../../client/index.js';
import { withClient } from '../client-session.js';
import { userMessage } from '../messages.js';
import type { ClientOptions } from '../session.js';

/** Removes every name given; a failure is reported and the others still go. Returns the exit code. */
export async function rm(names: string[], options: ClientOptions & { quiet?: boolean; recursive?: boolean }): Promise<number> {
  const failures = await withClient(options, async (client) => {
    let failed = 0;
    for (const name of names) {
      try {
        await (options.recursive ? client.removeTree(name) : client.remove(name));
        if (!options.quiet) process.stdout.write(`removed ${printableName(name)}\n`);
      } catch (error) {
        if (names.length === 1 || (error instanceof FerryError && error.fatal)) throw error;
        failed++;
        process.stderr.write(`ferry: ${printableName(name)}: ${userMessage(error)}\n`);
      }
    }
    return failed;
  });
  if (failures > 0) process.stderr.write(`ferry: ${failures} of ${names.length} failed\n`);
  return failures > 0 ? 1 : 0;
}
