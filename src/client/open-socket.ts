import net from 'node:net';
import type tls from 'node:tls';
import { nodeTls } from '../builtins.js';
import { FerryError } from '../errors.js';
import { printableName } from '../protocol/index.js';
import { MIN_TLS_VERSION, parseFingerprint, peerFingerprint, preferredCiphers } from '../transport/tls.js';
import type { ConnectOptions, TlsClientOptions } from './connection.js';
import { hostKey, KnownHosts } from './known-hosts.js';
import type { SlabReader } from '../transport/read-slab.js';

/**
 * Opening a connection's socket: TCP, or TLS whose certificate is checked (pinned
 * fingerprint, a trusted CA, or trust on first use) before any protocol byte is sent; and the
 * one-line errors for what can go wrong on the way.
 */
export function transportError(error: NodeJS.ErrnoException, where: string): FerryError {
  switch (error.code) {
    case 'ECONNREFUSED':
      return new FerryError('CONNECTION', `connection refused by ${where}: is the ferry server running?`, { cause: error, fatal: true });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new FerryError('CONNECTION', `cannot resolve the host in ${where}`, { cause: error, fatal: true });
    case 'ECONNRESET':
    case 'EPIPE':
      return new FerryError('CLOSED', `connection to ${where} was reset`, { cause: error, fatal: true });
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new FerryError('CONNECTION', `cannot reach ${where} (${error.code})`, { cause: error, fatal: true });
    default:
      return new FerryError('CONNECTION', `connection to ${where} failed: ${error.message}`, { cause: error, fatal: true });
  }
}

/**
 * The CAs for the handshake. A pinned fingerprint is the whole check, so no CA is loaded:
 * Node's root store costs ~70 ms of CPU to build, once per process (half of a `ferry ls --tls`).
 */
function trustedCas(options: TlsClientOptions, pinned: boolean): (string | Buffer)[] | undefined {
  if (pinned) return [];
  return options.ca === undefined ? undefined : [...nodeTls().rootCertificates, ...[options.ca].flat()];
}

/**
 * A connected socket: plain TCP, or TLS whose certificate passed the checks (before any byte
 * is sent). Either reads through `reader` (`onread`: no stream, no buffer per read).
 * `firstFrame` (the HELLO) is written as early as it may be: on TCP at once, queued by Node
 * until the connection is up, so the server answers while this side still sets up (a
 * `ferry ls` spent ~5 ms between calling connect() and writing its HELLO); on TLS only once
 * the certificate passed.
 *
 * A server remembered in known_hosts is first tried as if pinned to the remembered fingerprint,
 * with no CA store (see trustedCas). Only if it presents another certificate is the connection
 * made again with the CAs, which may vouch for the new one: the same verdicts as checking the
 * CAs first, without their cost on every connection to a known server.
 */
export async function openTransport(
  host: string,
  port: number,
  where: string,
  options: ConnectOptions,
  onCancel: (cancel: () => void) => void,
  timeoutError: () => FerryError,
  reader: SlabReader,
  firstFrame: Uint8Array,
): Promise<net.Socket> {
  const tlsOptions: TlsClientOptions | undefined = options.tls === true ? {} : options.tls === false ? undefined : options.tls;
  const open = (remembered?: string): Promise<net.Socket | undefined> =>
    openSocket(host, port, where, tlsOptions, remembered, onCancel, timeoutError, reader, firstFrame);
  if (tlsOptions !== undefined && tlsOptions.fingerprint === undefined && tlsOptions.knownHosts !== false) {
    // Unreadable here, it is read again (and its error reported) only if the full check needs it.
    const remembered = await new KnownHosts(tlsOptions.knownHosts).lookup(hostKey(host, port)).catch(() => undefined);
    const socket = remembered === undefined ? undefined : await open(remembered);
    if (socket) return socket;
  }
  return (await open())!;
}

/** openTransport's one attempt; undefined only when the server does not present `remembered`. */
async function openSocket(
  host: string,
  port: number,
  where: string,
  tlsOptions: TlsClientOptions | undefined,
  remembered: string | undefined,
  onCancel: (cancel: () => void) => void,
  timeoutError: () => FerryError,
  reader: SlabReader,
  firstFrame: Uint8Array,
): Promise<net.Socket | undefined> {
  const socket = tlsOptions
    ? nodeTls().connect({
        host,
        port,
        servername: tlsOptions.servername ?? (net.isIP(host) ? undefined : host),
        ca: trustedCas(tlsOptions, tlsOptions.fingerprint !== undefined || remembered !== undefined),
        minVersion: MIN_TLS_VERSION,
        ciphers: preferredCiphers(),
        // Verified below: a CA-signed certificate, a pinned fingerprint, or a known host.
        rejectUnauthorized: false,
        // Decrypted bytes land in the reader's slabs too: Node (since 15.10) takes `onread`
        // here, though @types/node does not say so.
        ...readInto(reader),
      })
    : net.connect({ host, port, onread: reader.onread });
  socket.setNoDelay(true); // before the first frame: no Nagle wait behind unacknowledged TLS handshake bytes
  if (!tlsOptions) socket.write(firstFrame);
  await new Promise<void>((resolve, reject) => {
    const ready = tlsOptions ? 'secureConnect' : 'connect';
    const cleanup = (): void => {
      socket.off(ready, onReady);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    const onReady = (): void => {
      cleanup();
      resolve();
    };
    const onError = (error: NodeJS.ErrnoException): void => {
      cleanup();
      socket.destroy();
      reject(tlsOptions ? tlsHandshakeError(error, where) : transportError(error, where));
    };
    const onClose = (): void => {
      cleanup();
      reject(new FerryError('CLOSED', `${where} closed the connection during the TLS handshake`, { fatal: true }));
    };
    socket.once(ready, onReady);
    socket.once('error', onError);
    socket.once('close', onClose);
    onCancel(() => {
      cleanup();
      socket.destroy();
      reject(timeoutError());
    });
  });
  if (tlsOptions) {
    if (remembered !== undefined) {
      if (peerFingerprint(socket as tls.TLSSocket) !== remembered) {
        socket.destroy();
        return undefined;
      }
    } else {
      try {
        await verifyServer(socket as tls.TLSSocket, host, port, where, tlsOptions);
      } catch (error) {
        socket.destroy();
        throw error;
      }
    }
    socket.write(firstFrame); // never a protocol byte to a server whose certificate failed
  }
  return socket;
}

function readInto(reader: SlabReader): object {
  return { onread: reader.onread };
}

async function verifyServer(socket: tls.TLSSocket, host: string, port: number, where: string, options: TlsClientOptions): Promise<void> {
  const fingerprint = peerFingerprint(socket);
  if (fingerprint === undefined) throw new FerryError('CONNECTION', `${where} presented no TLS certificate`, { fatal: true });
  if (options.fingerprint !== undefined) {
    const pinned = parseFingerprint(options.fingerprint);
    if (pinned === undefined) throw new FerryError('CONNECTION', `invalid fingerprint "${printableName(options.fingerprint)}": expected SHA256:<base64>`, { fatal: true });
    if (fingerprint !== pinned) {
      throw new FerryError('CONNECTION', `server certificate fingerprint mismatch: ${where} presents ${fingerprint}, not the pinned ${pinned}`, { fatal: true });
    }
    return;
  }
  if (socket.authorized) return; // a CA the system (or options.ca) trusts, for this host name
  if (options.knownHosts === false) {
    throw new FerryError('CONNECTION', `the TLS certificate of ${where} is not trusted (${String(socket.authorizationError)}): pin it with --fingerprint ${fingerprint}`, { fatal: true });
  }
  const knownHosts = new KnownHosts(options.knownHosts);
  const key = hostKey(host, port);
  const known = await knownHosts.lookup(key);
  if (known === undefined) {
    await knownHosts.remember(key, fingerprint);
    options.onNewHost?.({ server: key, fingerprint, file: knownHosts.file });
  } else if (known !== fingerprint) {
    throw new FerryError(
      'CONNECTION',
      `server certificate fingerprint changed: ${key} now presents ${fingerprint}, but ${known} is remembered in ${knownHosts.file} — someone may be intercepting the connection; if the change is expected, remove that line`,
      { fatal: true },
    );
  }
}

function tlsHandshakeError(error: NodeJS.ErrnoException, where: string): FerryError {
  const code = error.code ?? '';
  if (/WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|RECORD_LAYER|UNKNOWN_PROTOCOL|HTTP_REQUEST/.test(code)) {
    return new FerryError('CONNECTION', `${where} does not speak TLS: it may be a plaintext ferry server (connect without --tls)`, { cause: error, fatal: true });
  }
  if (code === 'ECONNRESET' || code === 'EPIPE') {
    return new FerryError('CLOSED', `${where} closed the connection during the TLS handshake`, { cause: error, fatal: true });
  }
  if (code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS')) {
    return new FerryError('CONNECTION', `TLS handshake with ${where} failed: ${error.message}`, { cause: error, fatal: true });
  }
  return transportError(error, where);
}
