import type { FerryUploader } from '../client/uploader.js';
import { reportError } from './exit.js';
import { moveOneFile, noBar, putJob, putOne } from './one-file.js';
import { wantsProgress } from './progress.js';
import { parseQuickCommand } from './quick-args.js';
import { exitOnceFlushed, exitQuietlyOnClosedPipe } from './run.js';
import { withUploader } from './upload-session.js';

/**
 * `ferry put FILE` of one local file (over TCP or TLS) without commander or the ES module loader:
 * the launcher (dist/bin/cli/main.js) requires this file, bundled as CommonJS, for `put`. The
 * upload is the full CLI's own (one-file.ts: the same checks, identical-file skip, resume,
 * report line and errors) on a client without batch code. Returns false when the command
 * needs the full CLI: help, mistakes, anything unusual (-r, several files, stdin, --raw…),
 * and a progress bar (stderr a terminal without --quiet or --json).
 */
export function run(args: readonly string[]): boolean {
  const command = parseQuickCommand(args);
  if (command?.name !== 'put') return false;
  const { file, options } = command;
  if (wantsProgress(options.quiet || options.json)) return false;
  exitQuietlyOnClosedPipe(process.stdout);
  const work = (async (): Promise<number> => {
    const job = await putJob(file, options);
    // Without -r a folder is a job with a problem, never a tree to walk.
    if ('tree' in job) throw new Error(`${file} is a folder`);
    if (job.problem !== undefined) throw job.problem;
    return moveOneFile<FerryUploader>(
      'put',
      job,
      options,
      options.resume,
      noBar,
      (move) => withUploader(options, move),
      (client, hooks) => putOne(client, job, options, hooks),
    );
  })();
  work.then(
    (code) => exitOnceFlushed(code),
    (error: unknown) => exitOnceFlushed(reportError(error)),
  );
  return true;
}
