/**
 * Ctrl-C (or SIGTERM) during a command: undo what the command did to the terminal (progress
 * bars hide the cursor), say what happened and how to continue, and exit with the signal's
 * conventional status (130 for SIGINT, 143 for SIGTERM).
 */

const SHOW_CURSOR = '\u001b[?25h';

export interface InterruptHandling {
  /** Restores terminal state (stops progress bars); must be synchronous. */
  cleanup(): void;
  /** The one line printed after "interrupted", e.g. how to resume. */
  hint: () => string | undefined;
}

/** Installs the handlers; returns their removal. */
export function onInterrupt(handling: InterruptHandling): () => void {
  const handle = (signal: NodeJS.Signals): void => {
    handling.cleanup();
    if (process.stderr.isTTY) process.stderr.write(`\r${SHOW_CURSOR}\n`);
    const hint = handling.hint();
    process.stderr.write(`ferry: interrupted${hint === undefined ? '' : `: ${hint}`}\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', handle);
  process.once('SIGTERM', handle);
  return () => {
    process.off('SIGINT', handle);
    process.off('SIGTERM', handle);
  };
}
