import type { FerryDownloader } from '../client/downloader.js';
import { withDownloader } from './download-session.js';
import { reportError } from './exit.js';
import { getOne, moveOneFile, noBar, singleGetDestination } from './one-file.js';
import { wantsProgress } from './progress.js';
import { parseQuickCommand } from './quick-args.js';
import { exitOnceFlushed, exitQuietlyOnClosedPipe } from './run.js';

/**
 * `ferry get NAME` of one file (over TCP or TLS) without commander or the ES module loader: the
 * launcher (dist/bin/cli/main.js) requires this file, bundled as CommonJS, for `get`. The
 * download is the full CLI's own (one-file.ts: the same destination rules, temporary and
 * rename, verification, report line and errors) on a client without upload or batch code.
 * Returns false when the command needs the full CLI: help, mistakes, anything unusual, and a
 * progress bar (stderr a terminal without --quiet or --json), which loads cli-progress.
 */
export function run(args: readonly string[]): boolean {
  const command = parseQuickCommand(args);
  if (command?.name !== 'get') return false;
  const { file, options } = command;
  if (wantsProgress(options.quiet || options.json)) return false;
  exitQuietlyOnClosedPipe(process.stdout);
  const work = (async (): Promise<number> => {
    const job = { name: file, local: await singleGetDestination(file, options.output) };
    const resumable = options.resume && options.output !== '-';
    return moveOneFile<FerryDownloader>(
      'get',
      job,
      options,
      resumable,
      noBar,
      (move) => withDownloader(options, move),
      (client, hooks) => getOne(client, job, options, hooks),
    );
  })();
  work.then(
    (code) => exitOnceFlushed(code),
    (error: unknown) => exitOnceFlushed(reportError(error)),
  );
  return true;
}
