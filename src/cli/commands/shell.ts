import readline from 'node:readline';
import { connect, type FerryClient } from '../../client/index.js';
import { DEFAULT_SERVER, parseServerAddress } from '../address.js';
import { progressBar } from '../progress.js';
import { securityOptions, timeoutMs } from '../session.js';
import { ShellSession } from '../shell-session.js';

export interface ShellOptions {
  timeout?: string;
  tls?: boolean;
  fingerprint?: string;
  tokenFile?: string;
  digest?: 'auto' | 'sha256';
}

const PROMPT = 'ferry> ';

/**
 * `ferry shell [HOST:PORT]`: an sftp-style prompt over one connection. On a terminal: a
 * prompt, tab completion and progress bars. From a pipe: commands only, no prompt noise.
 * Returns the exit code: 0 if every command succeeded, 1 otherwise.
 */
export async function shell(address: string | undefined, options: ShellOptions): Promise<number> {
  const interactive = process.stdin.isTTY === true;
  let session: ShellSession | undefined;
  const rl = readline.createInterface({
    input: process.stdin,
    output: interactive ? process.stdout : undefined,
    terminal: interactive,
    historySize: 200,
    completer: interactive
      ? (line: string, callback: (error: null, result: [string[], string]) => void): void => {
          if (!session) return callback(null, [[], line]);
          void session.complete(line).then((result) => callback(null, result));
        }
      : undefined,
  });
  // One iterator for the whole session, created before anything is read so no line is lost.
  const lines = rl[Symbol.asyncIterator]();
  const nextLine = async (prompt: string): Promise<string | undefined> => {
    if (interactive) {
      rl.setPrompt(prompt);
      rl.prompt();
    }
    const next = await lines.next();
    return next.done ? undefined : (next.value as string);
  };

  rl.on('SIGINT', () => {
    if (!session) {
      process.stdout.write('\n');
      process.exit(130); // Ctrl-C before the session started: nothing to clean up
    } else if (session.busy) {
      session.cancel(); // Ctrl-C during a command: cancel it, like sftp; the session goes on
    } else {
      clearLine(rl); // Ctrl-C at the prompt: drop what was typed, one fresh prompt
    }
  });

  try {
    const where = address ?? process.env.FERRY_SERVER ?? (await askAddress(nextLine));
    const { host, port } = parseServerAddress(where);
    const security = await securityOptions(options);
    const open = (): Promise<FerryClient> => connect({ host, port, clientName: 'ferry-shell', timeoutMs: timeoutMs(options.timeout), digest: options.digest, ...security });
    const client = await open();
    session = new ShellSession(
      client,
      {
        out: (text) => process.stdout.write(text),
        err: (text) => process.stderr.write(text),
        progress: (label) => progressBar(label, !interactive),
      },
      process.cwd(),
      open,
    );
    if (interactive) process.stdout.write(`connected to ${client.serverName} at ${host}:${port}; type help for commands\n`);
    try {
      for (;;) {
        const line = await nextLine(PROMPT);
        if (line === undefined) {
          if (interactive) process.stdout.write('\n'); // Ctrl-D: leave the terminal on a fresh line
          break; // end of input (Ctrl-D, or the pipe is done)
        }
        const outcome = await session.run(line);
        if (outcome === 'quit') break;
      }
    } finally {
      await session.connection.close();
    }
    return session.failures > 0 ? 1 : 0;
  } finally {
    rl.close();
  }
}

/**
 * Ends the typed line with "^C" and starts a fresh, empty prompt below it (as bash does). The
 * line buffer is emptied without readline redrawing it, so only one prompt appears.
 */
function clearLine(rl: readline.Interface): void {
  process.stdout.write('^C\n');
  const state = rl as unknown as { line: string; cursor: number };
  state.line = '';
  state.cursor = 0;
  rl.prompt();
}

/** Asks for the server when none was given; an empty answer takes the default. */
async function askAddress(nextLine: (prompt: string) => Promise<string | undefined>): Promise<string> {
  const answer = await nextLine(`server address (HOST:PORT) [${DEFAULT_SERVER}]: `);
  return answer === undefined || answer.trim() === '' ? DEFAULT_SERVER : answer.trim();
}
