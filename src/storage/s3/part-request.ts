import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';

/**
 * Where the SDK sent an object's request, learned from one it signed: every part of a multipart
 * upload goes to the same place (protocol, host, the path before the key, the signing region).
 */
export interface ObjectEndpoint {
  protocol: 'http:' | 'https:';
  hostname: string;
  port: number | undefined;
  /** The path before the encoded key: `/bucket/` (path-style) or `/` (virtual-hosted). */
  basePath: string;
  region: string;
}

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** What a store answered when it refused a request, shaped as the SDK's errors (see mapS3Error). */
export class StoreRefusal extends Error {
  constructor(
    override readonly name: string,
    message: string,
    readonly $metadata: { httpStatusCode?: number },
  ) {
    super(message);
  }
}

/** Attempts of one part: a refused one (4xx) is not repeated, a failed one (5xx, network) is. */
const ATTEMPTS = 3;
const RETRY_BASE_MS = 100;
/** A request whose socket is silent this long fails (as the SDK's requestTimeout). */
const SOCKET_TIMEOUT_MS = 120_000;

/** A key as S3 wants it in a path: each segment RFC 3986-encoded, '/' kept (the SDK's encoding too). */
export function encodeKey(key: string): string {
  return key.split('/').map(encodeRfc3986).join('/');
}

function encodeRfc3986(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * The endpoint of a request the SDK made for `key` (its final, signed form), or undefined when
 * its path does not end with the key as encoded here (then parts keep going through the SDK).
 */
export function endpointOf(request: { protocol?: string; hostname?: string; port?: number; path?: string; headers: Record<string, string> }, key: string): ObjectEndpoint | undefined {
  const path = request.path ?? '';
  const encoded = encodeKey(key);
  const region = /Credential=[^/]+\/\d{8}\/([^/]+)\/s3\/aws4_request/.exec(request.headers.authorization ?? request.headers.Authorization ?? '')?.[1];
  if (!path.endsWith(encoded) || region === undefined || (request.protocol !== 'http:' && request.protocol !== 'https:') || !request.hostname) return undefined;
  return { protocol: request.protocol, hostname: request.hostname, port: request.port, basePath: path.slice(0, path.length - encoded.length), region };
}

/**
 * UploadPart without the SDK: one signed PUT (SigV4, UNSIGNED-PAYLOAD, checked by the store
 * against Content-MD5) on a keep-alive agent of its own. Through the SDK each part made ~0.2 MB
 * of short-lived objects (middleware, endpoint rules, serde): at a part every ~0.1 s, enough for
 * V8 to double the young generation during a long upload (+17 MB of RSS). Endpoint, region and
 * credentials are the SDK's: learned from a request it signed, and its credential provider.
 */
export class PartSender {
  private readonly agent: http.Agent;
  private signingKey: { scope: string; secret: string; key: Buffer } | undefined;

  constructor(
    private readonly endpoint: ObjectEndpoint,
    private readonly credentials: () => Promise<Credentials>,
    /** The SDK's correction of this machine's clock (ms), for the signature's time. */
    private readonly clockOffset: () => number,
    maxSockets: number,
  ) {
    const Agent = endpoint.protocol === 'https:' ? https.Agent : http.Agent;
    this.agent = new Agent({ keepAlive: true, maxSockets });
  }

  close(): void {
    this.agent.destroy();
  }

  /** Uploads one part; gives its ETag. */
  async uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer, md5: string): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.send(key, uploadId, partNumber, body, md5);
      } catch (error) {
        const status = error instanceof StoreRefusal ? error.$metadata.httpStatusCode : undefined;
        const retryable = status === undefined || status >= 500 || (error instanceof StoreRefusal && error.name === 'RequestTimeout');
        if (!retryable || attempt >= ATTEMPTS) throw error;
        await new Promise((resolve) => setTimeout(resolve, RETRY_BASE_MS * 2 ** (attempt - 1) * (0.5 + Math.random())));
      }
    }
  }

  private async send(key: string, uploadId: string, partNumber: number, body: Buffer, md5: string): Promise<string> {
    const credentials = await this.credentials();
    const { protocol, hostname, port, basePath, region } = this.endpoint;
    const path = basePath + encodeKey(key);
    const query = `partNumber=${partNumber}&uploadId=${encodeRfc3986(uploadId)}`;
    const host = port === undefined || (protocol === 'http:' && port === 80) || (protocol === 'https:' && port === 443) ? hostname : `${hostname}:${port}`;
    const amzDate = new Date(Date.now() + this.clockOffset()).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
    const headers: Record<string, string> = {
      'content-md5': md5,
      host,
      'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
      'x-amz-date': amzDate,
      ...(credentials.sessionToken ? { 'x-amz-security-token': credentials.sessionToken } : {}),
    };
    const names = Object.keys(headers).sort();
    const canonical = ['PUT', path, query, ...names.map((name) => `${name}:${headers[name]!.trim()}`), '', names.join(';'), 'UNSIGNED-PAYLOAD'].join('\n');
    const day = amzDate.slice(0, 8);
    const scope = `${day}/${region}/s3/aws4_request`;
    const toSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${createHash('sha256').update(canonical).digest('hex')}`;
    const signature = createHmac('sha256', this.keyFor(scope, day, region, credentials.secretAccessKey)).update(toSign).digest('hex');
    headers.authorization = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
    headers['content-length'] = String(body.length);
    return await new Promise<string>((resolve, reject) => {
      const request = (protocol === 'https:' ? https : http).request({ agent: this.agent, method: 'PUT', hostname, port, path: `${path}?${query}`, headers }, (response) => {
        const chunks: Buffer[] = [];
        let length = 0;
        response.on('data', (chunk: Buffer) => {
          if (length < 64 * 1024) chunks.push(chunk); // an error's XML; a part's answer has no body
          length += chunk.length;
        });
        response.on('error', reject);
        response.on('end', () => {
          const status = response.statusCode ?? 0;
          const etag = response.headers.etag;
          if (status === 200 && etag !== undefined) return resolve(etag);
          const xml = Buffer.concat(chunks).toString('utf8');
          const code = /<Code>([^<]*)<\/Code>/.exec(xml)?.[1] ?? `HTTP ${status}`;
          const message = /<Message>([^<]*)<\/Message>/.exec(xml)?.[1] ?? '';
          reject(new StoreRefusal(code, message, { httpStatusCode: status }));
        });
      });
      request.setTimeout(SOCKET_TIMEOUT_MS, () => request.destroy(new Error(`no answer from the S3 store for ${SOCKET_TIMEOUT_MS / 1000} s`)));
      request.on('error', reject);
      request.end(body);
    });
  }

  /** The day's signing key (HMAC chain of secret, day, region, service), kept while the day lasts. */
  private keyFor(scope: string, day: string, region: string, secret: string): Buffer {
    if (this.signingKey?.scope === scope && this.signingKey.secret === secret) return this.signingKey.key;
    const hmac = (key: string | Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest();
    const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), 's3'), 'aws4_request');
    this.signingKey = { scope, secret, key };
    return key;
  }
}
