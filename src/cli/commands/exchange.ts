import os from 'node:os';
import readline from 'node:readline';
import { listenError, formatAddress } from '../../server/server.js';
import { exchangeIntegers } from '../../services/exchange-client.js';
import {
  DEFAULT_EXCHANGE_PORT,
  DEFAULT_SERVER_NAME,
  DEFAULT_SERVER_NUMBER,
  nameProblem,
  parseInteger,
  printable,
  PROMPT,
} from '../../services/exchange-protocol.js';
import { ExchangeServer } from '../../services/exchange-server.js';
import { parseServerAddress } from '../address.js';
import { UsageError } from '../exit.js';
import { parsePort, parseSeconds } from '../numbers.js';

export interface ExchangeServeOptions {
  host?: string;
  port?: string;
  name?: string;
  number?: string;
}

/**
 * `ferry exchange serve`: runs until a client sends an integer outside 1–100 (the service's
 * contract: answer, say so, stop, exit 0) or until SIGINT/SIGTERM.
 */
export async function exchangeServe(options: ExchangeServeOptions): Promise<void> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port === undefined ? DEFAULT_EXCHANGE_PORT : parsePort(options.port);
  const name = checkedName(options.name ?? DEFAULT_SERVER_NAME);
  const number = options.number === undefined ? DEFAULT_SERVER_NUMBER : checkedInteger(options.number, '--number');
  const server = new ExchangeServer({ host, port, name, number });
  // Handlers go in before listening: a signal right after the "listening on" line must not kill us.
  const onSignal = (): void => void server.close();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    let address;
    try {
      address = await server.listen();
    } catch (error) {
      throw listenError(error as NodeJS.ErrnoException, host, port);
    }
    process.stdout.write(`exchange server "${printable(name)}" (integer ${number}) listening on ${formatAddress(address)}\n`);
    await server.stopped;
    process.stdout.write('stopped\n');
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export interface ExchangeSendOptions {
  name?: string;
  server?: string;
  timeout?: string;
}

/** `ferry exchange send [N]`: sends one integer (asked for when N is omitted), prints the exchange. */
export async function exchangeSend(numberText: string | undefined, options: ExchangeSendOptions): Promise<void> {
  const { host, port } = parseServerAddress(options.server ?? `127.0.0.1:${DEFAULT_EXCHANGE_PORT}`, DEFAULT_EXCHANGE_PORT);
  const name = checkedName(options.name ?? osUserName());
  const timeoutMs = options.timeout === undefined ? 10_000 : parseSeconds(options.timeout, '--timeout');
  const text = numberText ?? (await askForInteger());
  const value = checkedInteger(text, 'integer');
  const result = await exchangeIntegers({ host, port, client: { name, value }, timeoutMs });
  process.stdout.write(
    `server name: ${printable(result.server.name)}\n` +
      `client integer: ${result.client.value}\n` +
      `server integer: ${result.server.value}\n` +
      `sum: ${result.sum}\n`,
  );
}

/** Prints the prompt and reads one line from stdin. */
async function askForInteger(): Promise<string> {
  const interactive = process.stdin.isTTY === true;
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: interactive });
  try {
    const answer = await new Promise<string | undefined>((resolve) => {
      rl.once('line', resolve);
      rl.once('close', () => resolve(undefined));
      rl.setPrompt(`${PROMPT} `);
      rl.prompt();
    });
    // From a pipe nothing was echoed after the prompt: end its line so the output starts clean.
    if (!interactive) process.stdout.write('\n');
    if (answer === undefined) throw new UsageError('no integer given: standard input ended before a line');
    return answer;
  } finally {
    rl.close();
  }
}

function checkedName(name: string): string {
  const problem = nameProblem(name);
  if (problem !== undefined) throw new UsageError(`invalid --name "${printable(name)}": ${problem}`);
  return name;
}

function checkedInteger(text: string, what: string): bigint {
  const value = parseInteger(text);
  if (value === undefined) throw new UsageError(`invalid ${what} "${printable(text)}": not a whole number`);
  return value;
}

/** The OS user name; some containers have no passwd entry, so fall back to the environment. */
function osUserName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env.USER ?? process.env.LOGNAME ?? 'anonymous';
  }
}
