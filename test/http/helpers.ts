import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import net from 'node:net';
import tar from 'tar-stream';
import { startServer, type TestServer } from '../helpers/fixtures.js';
import type { ServerOptions } from '../../src/index.js';

export interface HttpServer extends TestServer {
  /** http://127.0.0.1:PORT */
  base: string;
  httpPort: number;
}

/** A real server with the HTTP door on an ephemeral port. */
export async function startHttp(options: ServerOptions = {}): Promise<HttpServer> {
  const server = await startServer({ httpPort: 0, ...options });
  const address = server.server.pluginAddress('http');
  if (!address) throw new Error('the http plug-in did not start');
  return { ...server, httpPort: address.port, base: `${options.tls ? 'https' : 'http'}://127.0.0.1:${address.port}` };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * Sends `request` (exact bytes: no client normalises the path) and reads the answer until the
 * server closes (requests should say `Connection: close`).
 */
export function rawRequest(port: number, request: string | Buffer, ms = 5000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('raw request timed out'));
    }, ms);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      try {
        resolve(parseResponse(Buffer.concat(chunks)));
      } catch (error) {
        reject(error as Error);
      }
    });
    socket.write(request);
  });
}

/** The last response in `bytes` (after any 100 Continue). */
export function parseResponse(bytes: Buffer): RawResponse {
  let text = bytes;
  for (;;) {
    const end = text.indexOf('\r\n\r\n');
    if (end < 0) throw new Error(`no HTTP response in ${JSON.stringify(bytes.toString('latin1').slice(0, 200))}`);
    const head = text.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(head[0]!.split(' ')[1]);
    const rest = text.subarray(end + 4);
    if (status === 100) {
      text = rest;
      continue;
    }
    const headers: Record<string, string> = {};
    for (const line of head.slice(1)) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    return { status, headers, body: rest };
  }
}

/** GET `path` as raw bytes on the wire. */
export function rawGet(port: number, path: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  const lines = [`GET ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  return rawRequest(port, `${lines.join('\r\n')}\r\n\r\n`);
}

export interface CurlResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs the real curl. */
export function curl(args: string[], timeoutMs = 20_000): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-sS', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr });
    });
  });
}

export function sha256b64(data: Buffer): string {
  return createHash('sha256').update(data).digest('base64');
}

/** The files of a tar archive, by name. */
export async function untar(archive: Buffer): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        files.set(header.name, Buffer.concat(chunks));
        next();
      });
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  extract.end(archive);
  await done;
  return files;
}
