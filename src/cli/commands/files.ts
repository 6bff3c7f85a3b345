import { printableName, type Entry } from '../../client/index.js';
import { humanSize, shortTime } from '../format.js';
import { withClient, type ClientOptions } from '../session.js';

export interface LsOptions extends ClientOptions {
  json?: boolean;
  long?: boolean;
}

export async function ls(prefix: string | undefined, options: LsOptions): Promise<void> {
  const entries = await withClient(options, (client) => client.list(prefix ?? ''));
  process.stdout.write(options.json ? jsonListing(entries) : tableListing(entries, options.long === true));
}

export function jsonListing(entries: Entry[]): string {
  const rows = entries.map((e) => ({ name: e.name, size: e.size, mtime: e.mtime.toISOString(), sha256: e.sha256 }));
  return `${JSON.stringify(rows)}\n`;
}

/** One line per file: modified, size (bytes, or human with `long`), short sha256, name. */
export function tableListing(entries: Entry[], long = false): string {
  const rows = entries.map((e) => [
    long ? e.mtime.toISOString() : shortTime(e.mtime),
    long ? humanSize(e.size) : String(e.size),
    e.sha256.slice(0, 12),
    printableName(e.name),
  ]);
  const sizeWidth = Math.max(0, ...rows.map((r) => r[1]!.length));
  return rows.map((r) => `${r[0]}  ${r[1]!.padStart(sizeWidth)}  ${r[2]}  ${r[3]}\n`).join('');
}

export async function stat(name: string, options: ClientOptions & { json?: boolean }): Promise<void> {
  const entry = await withClient(options, (client) => client.stat(name));
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ name: entry.name, size: entry.size, mtime: entry.mtime.toISOString(), sha256: entry.sha256 })}\n`);
  } else {
    process.stdout.write(
      `name    ${printableName(entry.name)}\nsize    ${entry.size} (${humanSize(entry.size)})\nmtime   ${entry.mtime.toISOString()}\nsha256  ${entry.sha256}\n`,
    );
  }
}

export async function rm(names: string[], options: ClientOptions & { quiet?: boolean; recursive?: boolean }): Promise<void> {
  await withClient(options, async (client) => {
    for (const name of names) {
      await (options.recursive ? client.removeTree(name) : client.remove(name));
      if (!options.quiet) process.stdout.write(`removed ${printableName(name)}\n`);
    }
  });
}
