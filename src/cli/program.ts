import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { UsageError } from './exit.js';
import { checkNumericOptions } from './numbers.js';

// Command modules (and the client, and pino) load lazily so `ferry --version` starts fast.

const SERVER_HELP = 'server as HOST:PORT (default: $FERRY_SERVER or 127.0.0.1:4455)';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function examples(lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
}

/**
 * The options every client command takes. quick-args.ts reads `ls` and `stat` command lines
 * without commander (the launcher's fast path): a flag or default changed here must change
 * there too (test/cli/quick-args.test.ts compares the two; a flag added here only is left to
 * commander, which is safe).
 */
function clientCommand(program: Command, name: string, summary: string): Command {
  return program
    .command(name)
    .description(summary)
    .option('-s, --server <host:port>', SERVER_HELP)
    .option('--timeout <seconds>', 'give up when the server is silent this long (0.001 to 2147483)', '30')
    .option('--tls', 'connect with TLS (CA-verified, pinned with --fingerprint, or trusted on first use)')
    .option('--fingerprint <SHA256:...>', 'accept only the server certificate with this fingerprint; implies --tls')
    .option('--token-file <file>', 'send the token in this file (default: $FERRY_TOKEN)')
    .addOption(new Option('--digest <algorithm>', 'verify with: auto (BLAKE3 when both ends have it, else SHA-256) or sha256').choices(['auto', 'sha256']).default('auto'));
}

export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('ferry')
    .description('Fast, verified file transfer over TCP: a server, and put/get/ls/rm against it.')
    .version(version(), '-V, --version')
    .showHelpAfterError('(add --help for usage)')
    // Numeric options are checked before any command runs: a bad value is exit 2, never a default.
    .hook('preAction', (_program, action) => checkNumericOptions(action))
    .addHelpText('after', examples([
      'ferry serve --root ./shared',
      'ferry put report.pdf',
      'ferry get report.pdf -o copy.pdf',
      'ferry ls --json',
      'FERRY_SERVER=fileserver:4455 ferry rm report.pdf',
      'ferry shell fileserver:4455',
    ]));

  program
    .command('serve')
    .description('run a ferry server')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('-p, --port <port>', 'TCP port (0 picks a free one)', '4455')
    .option('--root <dir>', 'folder the files are stored in (created if missing)', './ferry-data')
    .option('--store <url>', 'keep the files in S3 instead: s3://BUCKET/PREFIX (credentials and region from AWS_* / ~/.aws; --root then holds only the server\'s state)')
    .option('--s3-endpoint <url>', 'S3-compatible endpoint (Ceph RGW, Garage, SeaweedFS, MinIO), path-style; default: AWS')
    .option('--name <name>', 'server name sent to clients (default: host name)')
    .option('--max-file-size <bytes>', 'largest upload accepted, e.g. 10G')
    .option('--no-fsync', 'acknowledge uploads before they are on disk (faster; a crash may lose recent uploads)')
    .option('--partial-ttl <seconds>', 'keep interrupted uploads this long for resuming', String(24 * 3600))
    .option('--grace <seconds>', 'on SIGINT/SIGTERM, how long transfers in flight may finish', '5')
    .option('--raw-port <port>', 'also accept plain TCP uploads here (nc, socat, …): each connection becomes raw/<n>.file')
    .option('--raw-idle-timeout <seconds>', 'discard a raw upload after this long without a byte', '10')
    .option('--raw-anonymous', 'with --tokens, still accept raw uploads (the raw port cannot check tokens)')
    .option('--http-port <port>', 'also serve HTTP here (HTTPS with --tls): browse, download and upload from a browser or curl')
    .option('--tokens <file>', 'require a token: lines "<token> <read|write>" (# comments); see SECURITY.md')
    .option('--tls', 'serve TLS only (TLS >= 1.2); without --tls-cert/--tls-key a self-signed certificate is kept in <root>/.ferry/tls')
    .option('--tls-cert <file>', 'TLS certificate (PEM), with --tls-key; implies --tls')
    .option('--tls-key <file>', 'TLS private key (PEM), with --tls-cert; implies --tls')
    .option('--max-connections <n>', 'connections at once, over all ports', '1000')
    .option('--max-per-ip <n>', 'connections at once from one address (IPv6: one /64)', '50')
    .option('--handshake-timeout <seconds>', 'absolute deadline for HELLO (and AUTH) of a new connection', '15')
    .option('--idle-timeout <seconds>', 'close a connection whose client made no progress (sent nothing, read nothing) this long', '300')
    .option('--max-partials <n>', 'interrupted uploads kept for resuming at once; the oldest go first (default 1000)')
    .option('--max-partial-bytes <bytes>', 'bytes kept in interrupted uploads (default: half the quota, or half the free disk)')
    .option('--max-open-files <n>', 'files held open for transfers at once, all connections (default: from the open-file limit)')
    .option('--quota <bytes>', 'total bytes the store may hold, e.g. 50G (default: no quota; free disk space is always checked)')
    .addOption(new Option('--digest <algorithm>', 'verify transfers with: auto (BLAKE3 with clients that offer it, else SHA-256) or sha256').choices(['auto', 'sha256']).default('auto'))
    .option('--metrics-port <port>', 'also serve Prometheus metrics at http://HOST:PORT/metrics (same --host)')
    .option('--config <file>', 'read options from this TOML file: keys are the flags without "--" (port = 4455, fsync = false); flags given here win')
    .option('--check', 'check the configuration (ports free, root writable, tokens file private, TLS files) and exit without serving')
    .addHelpText('after', examples([
      'ferry serve',
      'ferry serve --config /etc/ferry/ferry.toml --check',
      'ferry serve --host 0.0.0.0 --port 4455 --root /srv/files',
      'ferry serve --port 0   # any free port',
      'ferry serve --raw-port 4456   # then: nc -N 127.0.0.1 4456 < photo.jpg',
      'ferry serve --http-port 8080  # then open http://127.0.0.1:8080/',
      'ferry serve --host 0.0.0.0 --tls --tokens /etc/ferry/tokens   # see SECURITY.md',
    ]))
    .action(async (_options, command: Command) => {
      const { serveWithConfig } = await import('./serve-config.js');
      setExit(await serveWithConfig(command));
    });

  clientCommand(program, 'put', 'upload files or folders; prints name, size, digest and throughput for each')
    .argument('<files...>', 'local files; "-" reads stdin (needs --as); folders with -r')
    .option('--as <name>', 'store a single file under this name (may contain / for folders)')
    .option('-r, --recursive', 'upload folders: every file under DIR is stored as DIR/relative/path (symlinks skipped)')
    .option('--overwrite', 'replace existing files of the same name (identical ones are skipped)')
    .option('--rename', 'if a name is taken by a different file, store as "name (1).ext"')
    .option('-p, --preserve', 'the stored files keep their local modification times, like scp -p')
    .option('--no-resume', 'start over instead of continuing an interrupted upload')
    .option('--parallel <n>', `spread many files over N connections (1 to 64, default ${2})`)
    .option('-q, --quiet', 'print nothing on success')
    .option('--json', 'print one JSON object per file ("skipped": "identical" when already stored)')
    .option('--raw', 'send only the file\'s plain bytes to a raw receiver (ferry serve --raw-port, nc -l, …), given by -s HOST:PORT; timeout default 10 s')
    .addHelpText('after', examples([
      'ferry put report.pdf',
      'ferry put notes.txt --as a/b.txt',
      'ferry put a.txt b.txt c.txt',
      'ferry put -r photos/            # stored as photos/…',
      'tar c dir | ferry put - --as dir.tar',
      'ferry put big.iso -s fileserver:4455 --overwrite',
      'ferry put --raw photo.jpg -s fileserver:4456',
    ]))
    .action(async (files: string[], options, command: Command) => {
      if (options.raw) {
        if (files.length !== 1) throw new UsageError('--raw sends exactly one FILE');
        const { rawSend } = await import('./commands/raw-send.js');
        setExit(await rawSend(files[0]!, options, command.getOptionValueSource('timeout') !== 'default'));
        return;
      }
      const { put } = await import('./commands/transfer.js');
      setExit(await put(files, options));
    });

  clientCommand(program, 'get', 'download files or folders, each verified against the server\'s digest')
    .argument('<names...>', 'stored names (folders with -r)')
    .option('-o, --output <path>', 'file to write (one NAME; "-" for stdout), or folder (several NAMEs or -r)')
    .option('-r, --recursive', 'download folders: NAME/rel/path is written to OUTPUT/rel/path')
    .option('--no-resume', 'start over instead of continuing an interrupted download (<file>.ferry-part)')
    .option('--parallel <n>', `spread many files over N connections (1 to 64, default ${2})`)
    .option('-p, --preserve', 'set each file\'s modification time to the stored one, like scp -p')
    .option('-q, --quiet', 'print nothing on success')
    .option('--json', 'print one JSON object per file ("skipped": "identical" when left alone)')
    .addHelpText('after', examples([
      'ferry get report.pdf',
      'ferry get report.pdf -o copy.pdf',
      'ferry get a.txt b.txt -o downloads/',
      'ferry get -r photos -o ./photos-copy',
      'ferry get x.tar -o - | tar x',
      'ferry get a/b.txt -o /tmp/b.txt -s fileserver:4455',
    ]))
    .action(async (names: string[], options) => {
      const { get } = await import('./commands/transfer.js');
      setExit(await get(names, options));
    });

  clientCommand(program, 'ls', 'list stored files: modified, size, short digest, name')
    .argument('[prefix]', 'only files in this folder')
    .option('--json', 'print a JSON array of {name, size, mtime, algorithm, digest}')
    .option('-l, --long', 'human-readable sizes and full times')
    .addHelpText('after', examples(['ferry ls', 'ferry ls photos/2026', 'ferry ls -l', 'ferry ls --json | jq -r \'.[].name\'']))
    .action(async (prefix: string | undefined, options) => {
      const { ls } = await import('./commands/files.js');
      await ls(prefix, options);
    });

  clientCommand(program, 'stat', 'show one file\'s size, mtime and digest')
    .argument('<name>', 'stored name')
    .option('--json', 'print one JSON object')
    .addHelpText('after', examples(['ferry stat report.pdf', 'ferry stat report.pdf --json']))
    .action(async (name: string, options) => {
      const { stat } = await import('./commands/files.js');
      await stat(name, options);
    });

  clientCommand(program, 'rm', 'remove stored files, or folders with -r')
    .argument('<names...>', 'stored names')
    .option('-r, --recursive', 'remove folders with everything in them')
    .option('-q, --quiet', 'print nothing on success')
    .addHelpText('after', examples(['ferry rm report.pdf', 'ferry rm a/b.txt a/c.txt', 'ferry rm -r photos/2025']))
    .action(async (names: string[], options) => {
      const { rm } = await import('./commands/rm.js');
      setExit(await rm(names, options));
    });

  program
    .command('hash')
    .description('print local files\' digests as ferry stat shows them (algorithm:hex), to check a copy by hand')
    .argument('<files...>', 'local files; "-" reads stdin')
    .addOption(new Option('--digest <algorithm>', 'auto (what a ferry server agrees with this client: BLAKE3 when available), blake3 or sha256').choices(['auto', 'blake3', 'sha256']).default('auto'))
    .addHelpText('after', examples(['ferry hash report.pdf', 'ferry hash --digest sha256 report.pdf']))
    .action(async (files: string[], options) => {
      const { hash } = await import('./commands/hash.js');
      await hash(files, options);
    });

  clientCommand(program, 'roundtrip', 'upload, then download over a second connection and compare byte for byte')
    .argument('<file>', 'local file to send and check')
    .option('--as <name>', 'store under this name')
    .option('-o, --output <file>', 'keep the downloaded copy here (default: a temporary file, removed)')
    .addOption(new Option('--overwrite', 'replace an existing stored file of that name'))
    .addHelpText('after', examples([
      'ferry roundtrip student_info.txt --as student_info_from_client.txt -o server_downloaded_student_info.txt',
    ]))
    .action(async (file: string, options) => {
      const { roundtrip } = await import('./commands/roundtrip.js');
      setExit(await roundtrip(file, options));
    });

  program
    .command('shell')
    .description('interactive sftp-style prompt: ls, put, get, rm, lls, lcd over one connection')
    .argument('[host:port]', 'server (default: $FERRY_SERVER, otherwise asked for)')
    .option('--timeout <seconds>', 'give up when the server is silent this long (0.001 to 2147483)', '30')
    .option('--tls', 'connect with TLS (CA-verified, pinned with --fingerprint, or trusted on first use)')
    .option('--fingerprint <SHA256:...>', 'accept only the server certificate with this fingerprint; implies --tls')
    .option('--token-file <file>', 'send the token in this file (default: $FERRY_TOKEN)')
    .addOption(new Option('--digest <algorithm>', 'verify with: auto (BLAKE3 when both ends have it, else SHA-256) or sha256').choices(['auto', 'sha256']).default('auto'))
    .addHelpText('after', `\nCommands inside the shell: ls [-l] [PREFIX], put [-r] [-f] LOCAL... , get [-r] REMOTE [LOCAL], rm [-r] NAME...,
stat NAME, cd [FOLDER], pwd, lls [DIR], lcd [DIR], help, quit/exit. Tab completes commands and names on a
terminal; Ctrl-C cancels the running transfer. Reading from a pipe, it prints no prompt and exits 1 if any command failed.
${examples(['ferry shell 127.0.0.1:4455', "printf 'put a.txt\\nls\\nquit\\n' | ferry shell 127.0.0.1:4455"])}`)
    .action(async (address: string | undefined, options) => {
      const { shell } = await import('./commands/shell.js');
      setExit(await shell(address, options));
    });

  const exchange = program
    .command('exchange')
    .description('the integer exchange service: one text line each way over TCP')
    .addHelpText('after', examples(['ferry exchange serve --name alice-server', 'ferry exchange send 7 --name bob -s 127.0.0.1:12000']));

  exchange
    .command('serve')
    .description('answer each "Client of NAME: N" line with "Server of NAME: N"; a client integer outside 1-100 stops the server')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('-p, --port <port>', 'TCP port (0 picks a free one)', '12000')
    .option('--name <name>', 'server name sent to clients', 'ferry')
    .option('--number <n>', 'the server\'s integer', '42')
    .addHelpText('after', examples(['ferry exchange serve', 'ferry exchange serve --port 12001 --name box --number 7']))
    .action(async (options) => {
      const { exchangeServe } = await import('./commands/exchange.js');
      await exchangeServe(options);
    });

  exchange
    .command('send')
    .description('send one integer to an exchange server and print both integers and their sum')
    .argument('[n]', 'the integer to send (asked for when omitted)')
    .option('--name <name>', 'client name sent to the server (default: your OS user name)')
    .option('-s, --server <host:port>', 'exchange server', '127.0.0.1:12000')
    .option('--timeout <seconds>', 'connect and answer deadline', '10')
    .addHelpText('after', examples(['ferry exchange send 7', 'ferry exchange send --name bob -s 10.0.0.5:12000', 'echo 101 | ferry exchange send   # stops the server']))
    .action(async (n: string | undefined, options) => {
      const { exchangeSend } = await import('./commands/exchange.js');
      await exchangeSend(n, options);
    });

  return program;
}

/** Every command below `command`, nested ones included (exchange serve, …). */
export function allCommands(command: Command): Command[] {
  return command.commands.flatMap((sub) => [sub, ...allCommands(sub)]);
}
