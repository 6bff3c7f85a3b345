import readline from 'node:readline';
import { connect } from '../../client/index.js';
import { DEFAULT_SERVER, parseServerAddress } from '../address.js';
import { progressBar } from '../progress.js';
import { securityOptions, timeoutMs } from '../session.js';
import { ShellSession } from '../shell-session.js';

export interface ShellOptions {
  timeout?: string;
  tls?: boolean;
  fingerprint?: string;
  tokenFile?: string;
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

  let running: (() => void) | undefined;
  rl.on('SIGINT', () => {
    if (!session) {
      process.stdout.write('\n');
      process.exit(130); // Ctrl-C before the session started: nothing to clean up
    } else if (running) {
      running(); // Ctrl-C during a transfer: abort it (this ends the session)
    } else {
      process.stdout.write('^C\n');
      rl.write(null, { ctrl: true, name: 'u' }); // clear what was typed, like a shell
      rl.prompt();
    }
  });

  try {
    const where = address ?? process.env.FERRY_SERVER ?? (await askAddress(nextLine));
    const { host, port } = parseServerAddress(where);
    const client = await connect({ host, port, clientName: 'ferry-shell', timeoutMs: timeoutMs(options.timeout), ...(await securityOptions(options)) });
    session = new ShellSession(client, {
      out: (text) => process.stdout.write(text),
      err: (text) => process.stderr.write(text),
      progress: (label) => progressBar(label, !interactive),
    });
    if (interactive) process.stdout.write(`connected to ${client.serverName} at ${host}:${port}; type help for commands\n`);
    try {
      for (;;) {
        const line = await nextLine(PROMPT);
        if (line === undefined) {
          if (interactive) process.stdout.write('\n'); // Ctrl-D: leave the terminal on a fresh line
          break; // end of input (Ctrl-D, or the pipe is done)
        }
        running = () => client.destroy();
        const outcome = await session.run(line);
        running = undefined;
        if (outcome === 'quit') break;
      }
    } finally {
      await client.close();
    }
    return session.failures > 0 ? 1 : 0;
  } finally {
    rl.close();
  }
}

/** Asks for the server when none was given; an empty answer takes the default. */
async function askAddress(nextLine: (prompt: string) => Promise<string | undefined>): Promise<string> {
  const answer = await nextLine(`server address (HOST:PORT) [${DEFAULT_SERVER}]: `);
  return answer === undefined || answer.trim() === '' ? DEFAULT_SERVER : answer.trim();
}
