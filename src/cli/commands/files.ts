import type { Entry } from '../../client/types.js';
import { FerryError } from '../../errors.js';
import { printableName } from '../../protocol/names.js';
import { humanSize, longTime, shortTime } from '../format.js';
import { withReader, type ClientOptions } from '../session.js';

export interface LsOptions extends ClientOptions {
  json?: boolean;
  long?: boolean;
}

/**
 * Lists a folder (or the whole store), printing each batch as it arrives: a listing of any
 * size takes a few batches of memory. A name that is a file lists that file, like ls; a name
 * that is neither is an error; an empty store says so on stderr (the listing itself stays empty).
 */
export async function ls(prefix: string | undefined, options: LsOptions): Promise<void> {
  const folder = prefix?.replace(/\/+$/, '') ?? '';
  const printer = new ListingPrinter(options.json === true, options.long === true);
  await withReader(options, async (client) => {
    try {
      for await (const batch of client.listStream(folder)) await printer.print(batch);
    } catch (error) {
      // Listing a file's name is refused (CONFLICT) or empty: then it is looked up as a file.
      const aFileMaybe = folder !== '' && printer.count === 0 && error instanceof FerryError && (error.code === 'CONFLICT' || error.code === 'NOT_FOUND');
      if (!aFileMaybe) throw error;
    }
    if (printer.count > 0 || folder === '') return;
    const file = await client.stat(folder).catch(() => undefined);
    if (file?.kind === 'file') return printer.print([file]);
    if (file?.kind === 'folder') return;
    throw new FerryError('NOT_FOUND', `no folder named "${printableName(folder)}"`);
  });
  await printer.end();
  if (printer.count === 0 && !options.json) process.stderr.write(folder === '' ? 'ferry: no files stored yet\n' : `ferry: "${printableName(folder)}" is empty\n`);
}

/**
 * Writes a listing to stdout batch by batch, waiting for stdout to drain. Table columns are
 * as wide as the widest size printed so far (a streamed listing cannot know the last one).
 */
class ListingPrinter {
  count = 0;
  private sizeWidth = 0;

  constructor(
    private readonly json: boolean,
    private readonly long: boolean,
  ) {}

  async print(entries: Entry[]): Promise<void> {
    if (entries.length === 0) return;
    let text: string;
    if (this.json) {
      text = (this.count === 0 ? '[' : ',') + entries.map((e) => JSON.stringify(jsonRow(e))).join(',');
    } else {
      const rows = tableRows(entries, this.long);
      this.sizeWidth = Math.max(this.sizeWidth, ...rows.map((r) => r[1]!.length));
      text = formatRows(rows, this.sizeWidth);
    }
    this.count += entries.length;
    await write(text);
  }

  async end(): Promise<void> {
    if (this.json) await write(this.count === 0 ? '[]\n' : ']\n');
  }
}

function write(text: string): Promise<void> {
  return new Promise((resolve) => {
    if (process.stdout.write(text)) resolve();
    else process.stdout.once('drain', resolve);
  });
}

function jsonRow(e: Entry): { name: string; size: number; mtime: string; algorithm: string; digest: string } {
  return { name: e.name, size: e.size, mtime: e.mtime.toISOString(), algorithm: e.algorithm, digest: e.digest };
}

/** One line per file: modified, size (bytes, or human with `long`), short digest, name. */
export function tableListing(entries: Entry[], long = false): string {
  const rows = tableRows(entries, long);
  return formatRows(rows, Math.max(0, ...rows.map((r) => r[1]!.length)));
}

function tableRows(entries: Entry[], long: boolean): string[][] {
  return entries.map((e) => [long ? longTime(e.mtime) : shortTime(e.mtime), long ? humanSize(e.size) : String(e.size), e.digest.slice(0, 12), printableName(e.name)]);
}

function formatRows(rows: string[][], sizeWidth: number): string {
  return rows.map((r) => `${r[0]}  ${r[1]!.padStart(sizeWidth)}  ${r[2]}  ${r[3]}\n`).join('');
}

export async function stat(name: string, options: ClientOptions & { json?: boolean }): Promise<void> {
  const entry = await withReader(options, (client) => client.stat(name));
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ name: entry.name, size: entry.size, mtime: entry.mtime.toISOString(), algorithm: entry.algorithm, digest: entry.digest })}\n`);
  } else {
    process.stdout.write(statText(entry));
  }
}

/** The lines `stat` prints (also in the shell). */
export function statText(entry: Entry): string {
  return `name    ${printableName(entry.name)}\nsize    ${entry.size} (${humanSize(entry.size)})\nmtime   ${longTime(entry.mtime)}\ndigest  ${entry.algorithm}:${entry.digest}\n`;
}
