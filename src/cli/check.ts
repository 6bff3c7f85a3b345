import { constants, promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { Command, Option } from 'commander';
import { DEFAULT_HOST, DEFAULT_ROOT, fingerprintOf, TokenSet } from '../index.js';
import { s3Options, serverOptions, type ServeOptions } from './commands/serve.js';
import { ExitCode, UsageError } from './exit.js';
import { parsePort } from './numbers.js';

/**
 * `ferry serve --check`: everything that would stop the server from starting, or make it
 * unsafe, found without serving — each problem one line, all of them at once.
 */

/** What one check found: problems (one line each), or a short summary for the OK line. */
interface Finding {
  problems: string[];
  summary?: string;
}

type Check = (options: ServeOptions, command: Command) => Promise<Finding>;

/**
 * Checks of where the files live: the local root today. A store option that reaches out
 * (S3, …) adds its reachability check to this list, with the same deadline discipline.
 */
const STORE_CHECKS: Check[] = [checkRoot, checkBucket];

const CHECKS: Check[] = [checkCombination, checkPorts, ...STORE_CHECKS, checkTokens, checkTls];

/** Runs every check; prints `OK: …` (stdout) or one line per problem (stderr); returns the exit code. */
export async function checkConfiguration(command: Command, configProblems: string[]): Promise<number> {
  const options = command.opts<ServeOptions>();
  const problems = [...configProblems];
  const summaries: string[] = [];
  for (const check of CHECKS) {
    const finding = await check(options, command);
    problems.push(...finding.problems);
    if (finding.summary !== undefined) summaries.push(finding.summary);
  }
  if (problems.length > 0) {
    for (const problem of problems) process.stderr.write(`ferry: ${problem}\n`);
    process.stderr.write(`ferry: configuration check failed: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n`);
    return ExitCode.FAILURE;
  }
  process.stdout.write(`ferry: configuration OK: ${summaries.join('; ')}\n`);
  return ExitCode.OK;
}

/** Flags that only make sense together (raw port and tokens, certificate and key). */
async function checkCombination(options: ServeOptions): Promise<Finding> {
  try {
    serverOptions(options);
    return { problems: [] };
  } catch (error) {
    if (error instanceof UsageError) return { problems: [error.message] };
    throw error;
  }
}

/** Every `<port>` option (main, raw, metrics, any added later): a valid port, free to bind on --host, none twice. */
async function checkPorts(options: ServeOptions, command: Command): Promise<Finding> {
  const host = options.host ?? DEFAULT_HOST;
  const values = command.opts<Record<string, unknown>>();
  const problems: string[] = [];
  const taken = new Map<number, string>();
  const listed: string[] = [];
  for (const option of command.options as readonly Option[]) {
    const value = values[option.attributeName()];
    if (!/<port>/.test(option.flags) || typeof value !== 'string' || option.long === undefined) continue;
    const flag = option.long;
    let port: number;
    try {
      port = parsePort(value, flag);
    } catch (error) {
      problems.push((error as Error).message);
      continue;
    }
    const twin = taken.get(port);
    if (port !== 0 && twin !== undefined) {
      problems.push(`${flag} ${port} is also ${twin}: give each port its own number`);
      continue;
    }
    taken.set(port, flag);
    const bindProblem = await tryBind(host, port, flag);
    if (bindProblem !== undefined) {
      if (!problems.includes(bindProblem)) problems.push(bindProblem);
    } else {
      listed.push(`${flag.slice(2)} ${port === 0 ? '(any)' : port}`);
    }
  }
  return { problems, summary: `free on ${host}: ${listed.join(', ')}` };
}

/** Listens on host:port for an instant; undefined when that worked, else why not. */
function tryBind(host: string, port: number, flag: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (error: NodeJS.ErrnoException) => {
      const where = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
      switch (error.code) {
        case 'EADDRINUSE':
          resolve(`${flag} ${port}: ${where} is already in use (another server, or this one already running)`);
          break;
        case 'EACCES':
          resolve(`${flag} ${port}: no permission to listen on ${where}: use a port above 1023, or give the service CAP_NET_BIND_SERVICE`);
          break;
        case 'EADDRNOTAVAIL':
          resolve(`--host ${host} is not an address of this machine`);
          break;
        case 'ENOTFOUND':
        case 'EAI_AGAIN':
          resolve(`--host ${host}: cannot resolve this name`);
          break;
        default:
          resolve(`${flag} ${port}: cannot listen on ${where}: ${error.code ?? error.message}`);
      }
    });
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

/** The root exists and is a writable folder, or can be created (its nearest existing parent is one). */
async function checkRoot(options: ServeOptions): Promise<Finding> {
  const root = path.resolve(options.root ?? DEFAULT_ROOT);
  const stats = await fs.stat(root).catch((error: NodeJS.ErrnoException) => error);
  if (stats instanceof Error) {
    if (stats.code !== 'ENOENT' && stats.code !== 'ENOTDIR') return { problems: [`--root ${root}: ${stats.code ?? stats.message}`] };
    let parent = path.dirname(root);
    for (;;) {
      const found = await fs.stat(parent).catch(() => undefined);
      if (found !== undefined) {
        if (!found.isDirectory()) return { problems: [`--root ${root} cannot be created: ${parent} is not a folder`] };
        const writable = await fs.access(parent, constants.W_OK | constants.X_OK).then(() => true, () => false);
        if (!writable) return { problems: [`--root ${root} cannot be created: ${parent} is not writable by this user`] };
        return { problems: [], summary: `root ${root} (will be created)` };
      }
      if (path.dirname(parent) === parent) return { problems: [`--root ${root} cannot be created`] };
      parent = path.dirname(parent);
    }
  }
  if (!stats.isDirectory()) return { problems: [`--root ${root} is not a folder`] };
  const access = await fs.access(root, constants.W_OK | constants.X_OK).then(() => undefined, (error: NodeJS.ErrnoException) => error.code);
  if (access !== undefined) return { problems: [`--root ${root} is not writable by this user (${access})`] };
  return { problems: [], summary: `root ${root} writable` };
}

/** How long `--check` waits for the S3 store to answer. */
const BUCKET_CHECK_MS = 15_000;

/** With --store s3://…: the bucket answers with these credentials. */
async function checkBucket(options: ServeOptions): Promise<Finding> {
  let location;
  try {
    location = s3Options(options);
  } catch {
    return { problems: [] }; // reported by checkCombination
  }
  if (location === undefined) return { problems: [] };
  const { Bucket } = await import('../storage/s3/bucket.js');
  const where = `--store s3://${location.bucket}/${location.prefix}${location.endpoint ? ` at ${location.endpoint}` : ''}`;
  let timer: NodeJS.Timeout | undefined;
  let bucket;
  try {
    bucket = await Bucket.open(location);
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer in ${BUCKET_CHECK_MS / 1000} s`)), BUCKET_CHECK_MS);
      timer.unref();
    });
    await Promise.race([bucket.check(), late]);
    return { problems: [], summary: `${where} reachable` };
  } catch (error) {
    return { problems: [`${where}: ${error instanceof Error ? error.message : String(error)}`] };
  } finally {
    clearTimeout(timer);
    bucket?.close();
  }
}

/** The tokens file exists, is readable by its owner only, and parses. */
async function checkTokens(options: ServeOptions): Promise<Finding> {
  const file = options.tokens;
  if (file === undefined) return { problems: [], summary: 'no tokens (anyone who reaches the port may read and write)' };
  const stats = await fs.stat(file).catch((error: NodeJS.ErrnoException) => error);
  if (stats instanceof Error) return { problems: [`--tokens ${file}: ${stats.code === 'ENOENT' ? 'no such file' : (stats.code ?? stats.message)}`] };
  const problems: string[] = [];
  const mode = stats.mode & 0o777;
  if ((mode & 0o077) !== 0) {
    problems.push(`--tokens ${file} is open to group or others (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 ${file}`);
  }
  try {
    const tokens = await TokenSet.load(file);
    return { problems, summary: `${tokens.size} token${tokens.size === 1 ? '' : 's'} (mode ${mode.toString(8).padStart(4, '0')})` };
  } catch (error) {
    return { problems: [...problems, (error as Error).message] };
  }
}

/** The certificate and key load, belong together and the certificate is within its dates. */
async function checkTls(options: ServeOptions): Promise<Finding> {
  if (options.tlsCert === undefined || options.tlsKey === undefined) {
    return { problems: [], summary: options.tls ? 'TLS with a self-signed certificate under <root>/.ferry/tls' : 'no TLS' };
  }
  const read = async (file: string, flag: string): Promise<Buffer | string> =>
    fs.readFile(file).catch((error: NodeJS.ErrnoException) => `${flag} ${file}: ${error.code === 'ENOENT' ? 'no such file' : (error.code ?? error.message)}`);
  const cert = await read(options.tlsCert, '--tls-cert');
  const key = await read(options.tlsKey, '--tls-key');
  const unreadable = [cert, key].filter((x): x is string => typeof x === 'string');
  if (unreadable.length > 0 || typeof cert === 'string' || typeof key === 'string') return { problems: unreadable };
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch {
    return { problems: [`--tls-cert ${options.tlsCert} holds no PEM certificate`] };
  }
  try {
    tls.createSecureContext({ cert, key });
  } catch (error) {
    const message = (error as Error).message;
    return {
      problems: [
        /mismatch/i.test(message)
          ? `--tls-key ${options.tlsKey} does not match the certificate in --tls-cert ${options.tlsCert}`
          : `--tls-key ${options.tlsKey}: cannot load it (${message})`,
      ],
    };
  }
  const now = Date.now();
  if (Date.parse(certificate.validTo) < now) return { problems: [`--tls-cert ${options.tlsCert} expired on ${certificate.validTo}`] };
  if (Date.parse(certificate.validFrom) > now) return { problems: [`--tls-cert ${options.tlsCert} is not valid before ${certificate.validFrom}`] };
  return { problems: [], summary: `TLS ${fingerprintOf(certificate.raw)} until ${new Date(certificate.validTo).toISOString().slice(0, 10)}` };
}
