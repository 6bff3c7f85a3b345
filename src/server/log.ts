import { pino, type Logger } from 'pino';

export interface LoggerOptions {
  level?: string;
  /** Human-readable lines instead of JSON; default: when stdout is a terminal. */
  pretty?: boolean;
}

/**
 * pino for server logs: JSON lines for machines, and on a terminal a compact human line
 * ("12:00:01 INFO connected peer=127.0.0.1:5000") written without a worker thread.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.FERRY_LOG_LEVEL ?? 'info';
  const pretty = options.pretty ?? process.stdout.isTTY === true;
  if (!pretty) return pino({ level, base: undefined });
  return pino({ level, base: undefined }, { write: (line: string) => process.stdout.write(prettyLine(line)) });
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

export function prettyLine(jsonLine: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(jsonLine) as Record<string, unknown>;
  } catch {
    return jsonLine;
  }
  const { level, time, msg, ...rest } = record;
  const clock = new Date(typeof time === 'number' ? time : Date.now()).toTimeString().slice(0, 8);
  const fields = Object.entries(rest)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(' ');
  return `${clock} ${LEVELS[level as number] ?? String(level)} ${String(msg ?? '')}${fields ? ` ${fields}` : ''}\n`;
}
