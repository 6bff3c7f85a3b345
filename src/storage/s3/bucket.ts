import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type * as S3 from '@aws-sdk/client-s3';
import { FerryError } from '../../errors.js';
import type { S3Location } from './location.js';
import { endpointOf, PartSender, type Credentials } from './part-request.js';

type Sdk = typeof S3;

/** What a HEAD tells of an object. */
export interface ObjectHead {
  size: number;
  etag: string;
  /** User metadata (x-amz-meta-*), keys lower case. */
  metadata: Record<string, string>;
  /** When the object was written (ms; S3 keeps whole seconds), if the store said. */
  lastModified?: number;
}

/** An object's head and its body, from one GET. */
export interface ObjectRead {
  head: ObjectHead;
  body: Readable;
}

export interface ListPage {
  keys: { key: string; size: number; lastModified: number; etag: string }[];
  /** Common prefixes (with a delimiter): the sub-folders, each ending in '/'. */
  prefixes: string[];
  next: string | undefined;
}

/** Concurrent requests one store makes at most (each an HTTP socket to the endpoint). */
const MAX_SOCKETS = 64;
/**
 * Requests whose bodies go unsigned (UNSIGNED-PAYLOAD), checked by the store against their
 * Content-MD5 instead: SigV4 would hash every byte with SHA-256 on the event loop first
 * (~7 s of CPU per GiB here, without SHA instructions); MD5 costs a third of that.
 */
const UNSIGNED_BODIES = new Set(['PutObjectCommand', 'UploadPartCommand']);
/** Requests on an object whose signed form tells where parts go (see PartSender). */
const LEARN_FROM = new Set(['CreateMultipartUploadCommand', 'UploadPartCommand']);
/** Parts uploading at once per store through PartSender (each upload sends at most two). */
const PART_SOCKETS = 32;

/** The Content-MD5 header's value for `body`. */
export function contentMd5(body: Buffer | string): string {
  return createHash('md5').update(body).digest('base64');
}

/**
 * One bucket, through the AWS SDK v3, loaded on first use so the CLI and the local backend
 * never pay for it. Checksums only when an operation requires them: stores such as Ceph RGW
 * pacific reject the aws-chunked trailing checksums newer SDKs send by default. Errors become
 * FerryErrors with stable codes: 404 NOT_FOUND, 412 EXISTS (a conditional write lost), the
 * rest INTERNAL naming the store.
 */
export class Bucket {
  /** Sends parts once a request the SDK signed showed where they go (until then, the SDK does). */
  private parts: PartSender | undefined;

  private constructor(
    private readonly sdk: Sdk,
    readonly client: S3.S3Client,
    readonly name: string,
  ) {}

  /** Takes the endpoint of a request the SDK made for an object, the first time one is usable. */
  private learn(request: Parameters<typeof endpointOf>[0], key: string | undefined): void {
    if (this.parts !== undefined || key === undefined) return;
    const endpoint = endpointOf(request, key);
    if (endpoint === undefined) return;
    const config = this.client.config as unknown as { credentials: () => Promise<Credentials>; systemClockOffset?: number };
    this.parts = new PartSender(endpoint, () => config.credentials(), () => config.systemClockOffset ?? 0, PART_SOCKETS);
  }

  static async open(location: S3Location): Promise<Bucket> {
    // The SDK's notice that later versions will need Node 22 is for whoever upgrades it, not for users.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    const sdk = await import('@aws-sdk/client-s3');
    const region = location.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? (location.endpoint !== undefined ? 'us-east-1' : undefined);
    const client = new sdk.S3Client({
      ...(region !== undefined ? { region } : {}),
      ...(location.endpoint !== undefined ? { endpoint: location.endpoint, forcePathStyle: true } : {}),
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 3,
      // Each request otherwise rebuilds the middleware stack: ~half its garbage and CPU here
      // (a part's request made ~65 KB of it). Nothing changes the stack after open.
      cacheMiddleware: true,
      requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000, httpAgent: { keepAlive: true, maxSockets: MAX_SOCKETS } },
    });
    client.middlewareStack.add(
      (next, context) => (args) => {
        if (UNSIGNED_BODIES.has(context.commandName ?? '')) (args.request as { headers: Record<string, string> }).headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
        return next(args);
      },
      { step: 'build', name: 'ferryUnsignedPayload' },
    );
    const bucket = new Bucket(sdk, client, location.bucket);
    client.middlewareStack.add(
      (next, context) => (args) => {
        if (LEARN_FROM.has(context.commandName ?? '')) bucket.learn(args.request as Parameters<typeof endpointOf>[0], (args.input as { Key?: string }).Key);
        return next(args);
      },
      { step: 'deserialize', name: 'ferryLearnEndpoint' },
    );
    return bucket;
  }

  close(): void {
    this.parts?.close();
    this.client.destroy();
  }

  /** Fails with a clear error when the bucket cannot be reached with these credentials. */
  async check(): Promise<void> {
    await this.send<S3.HeadBucketCommandOutput>(new this.sdk.HeadBucketCommand({ Bucket: this.name }), `bucket ${this.name}`);
  }

  async head(key: string): Promise<ObjectHead | undefined> {
    try {
      const out = await this.send<S3.HeadObjectCommandOutput>(new this.sdk.HeadObjectCommand({ Bucket: this.name, Key: key }), key);
      return headOf(out);
    } catch (error) {
      if (error instanceof FerryError && error.code === 'NOT_FOUND') return undefined;
      throw error;
    }
  }

  /** The bytes start..end (inclusive) of `key`; with `etag`, only of that version (else 412 → CONFLICT). */
  async get(key: string, range?: { start: number; end: number }, etag?: string): Promise<Readable> {
    return (await this.read(key, range, etag)).body;
  }

  /** `get` with the object's head (size, ETag, metadata): one request where a HEAD and a GET would be two. */
  async read(key: string, range?: { start: number; end: number }, etag?: string): Promise<ObjectRead> {
    try {
      const out = await this.send<S3.GetObjectCommandOutput>(
        new this.sdk.GetObjectCommand({
          Bucket: this.name,
          Key: key,
          ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
          ...(etag !== undefined ? { IfMatch: etag } : {}),
        }),
        key,
      );
      return { head: headOf(out), body: out.Body as Readable };
    } catch (error) {
      if (error instanceof FerryError && error.code === 'EXISTS') throw new FerryError('CONFLICT', `"${key}" was replaced while it was read`);
      throw error;
    }
  }

  async getText(key: string): Promise<string | undefined> {
    try {
      const body = await this.get(key);
      const chunks: Buffer[] = [];
      for await (const chunk of body) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    } catch (error) {
      if (error instanceof FerryError && error.code === 'NOT_FOUND') return undefined;
      throw error;
    }
  }

  /** Writes an object and gives its ETag; with `ifNoneMatch`, only if none of that key exists (else EXISTS). */
  async put(key: string, body: Buffer | string, options: { metadata?: Record<string, string>; ifNoneMatch?: boolean; contentType?: string } = {}): Promise<string> {
    const out = await this.send<S3.PutObjectCommandOutput>(
      new this.sdk.PutObjectCommand({
        Bucket: this.name,
        Key: key,
        Body: body,
        ContentLength: Buffer.byteLength(body),
        ContentMD5: contentMd5(body),
        ...(options.metadata ? { Metadata: options.metadata } : {}),
        ...(options.ifNoneMatch ? { IfNoneMatch: '*' } : {}),
        ...(options.contentType ? { ContentType: options.contentType } : {}),
      }),
      key,
    );
    return out.ETag ?? '';
  }

  async delete(key: string): Promise<void> {
    await this.send<S3.DeleteObjectCommandOutput>(new this.sdk.DeleteObjectCommand({ Bucket: this.name, Key: key }), key);
  }

  /** Deletes up to 1000 keys in one request. */
  async deleteMany(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    const out = await this.send<S3.DeleteObjectsCommandOutput>(
      new this.sdk.DeleteObjectsCommand({ Bucket: this.name, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }),
      `${keys.length} keys`,
    );
    const failed = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
    if (failed.length > 0) throw new FerryError('INTERNAL', `the S3 store refused to delete ${failed[0]!.Key}: ${failed[0]!.Message ?? failed[0]!.Code}`);
  }

  async list(prefix: string, options: { delimiter?: boolean; token?: string; maxKeys?: number; startAfter?: string } = {}): Promise<ListPage> {
    const out = await this.send<S3.ListObjectsV2CommandOutput>(
      new this.sdk.ListObjectsV2Command({
        Bucket: this.name,
        Prefix: prefix,
        ...(options.delimiter ? { Delimiter: '/' } : {}),
        ...(options.token !== undefined ? { ContinuationToken: options.token } : {}),
        ...(options.startAfter !== undefined ? { StartAfter: options.startAfter } : {}),
        MaxKeys: options.maxKeys ?? 1000,
      }),
      prefix,
    );
    return {
      keys: (out.Contents ?? []).map((c) => ({ key: c.Key!, size: c.Size ?? 0, lastModified: c.LastModified?.getTime() ?? 0, etag: c.ETag ?? '' })),
      prefixes: (out.CommonPrefixes ?? []).map((p) => p.Prefix!),
      next: out.IsTruncated ? out.NextContinuationToken : undefined,
    };
  }

  async createMultipart(key: string): Promise<string> {
    const out = await this.send<S3.CreateMultipartUploadCommandOutput>(new this.sdk.CreateMultipartUploadCommand({ Bucket: this.name, Key: key }), key);
    return out.UploadId!;
  }

  /** Uploads one part; `md5` is the part's Content-MD5 (base64) if the caller hashed it already. */
  async uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer, md5 = contentMd5(body)): Promise<string> {
    if (this.parts !== undefined) {
      try {
        return await this.parts.uploadPart(key, uploadId, partNumber, body, md5);
      } catch (error) {
        throw mapS3Error(error, key, this.name);
      }
    }
    const out = await this.send<S3.UploadPartCommandOutput>(
      new this.sdk.UploadPartCommand({ Bucket: this.name, Key: key, UploadId: uploadId, PartNumber: partNumber, Body: body, ContentLength: body.length, ContentMD5: md5 }),
      key,
    );
    return out.ETag!;
  }

  async completeMultipart(key: string, uploadId: string, parts: { number: number; etag: string }[]): Promise<void> {
    await this.send<S3.CompleteMultipartUploadCommandOutput>(
      new this.sdk.CompleteMultipartUploadCommand({
        Bucket: this.name,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.number, ETag: p.etag })) },
      }),
      key,
    );
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    try {
      await this.send<S3.AbortMultipartUploadCommandOutput>(new this.sdk.AbortMultipartUploadCommand({ Bucket: this.name, Key: key, UploadId: uploadId }), key);
    } catch (error) {
      if (!(error instanceof FerryError && error.code === 'NOT_FOUND')) throw error;
    }
  }

  /** Multipart uploads in progress under `prefix`, with when each was started. */
  async listMultipart(prefix: string): Promise<{ key: string; uploadId: string; initiated: number }[]> {
    const found: { key: string; uploadId: string; initiated: number }[] = [];
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    for (let page = 0; page < 100; page++) {
      const out = await this.send<S3.ListMultipartUploadsCommandOutput>(
        new this.sdk.ListMultipartUploadsCommand({ Bucket: this.name, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: idMarker }),
        prefix,
      );
      for (const u of out.Uploads ?? []) found.push({ key: u.Key!, uploadId: u.UploadId!, initiated: u.Initiated?.getTime() ?? 0 });
      if (!out.IsTruncated) break;
      keyMarker = out.NextKeyMarker;
      idMarker = out.NextUploadIdMarker;
    }
    return found;
  }

  private async send<T>(command: object, what: string): Promise<T> {
    try {
      return (await this.client.send(command as never)) as T;
    } catch (error) {
      throw mapS3Error(error, what, this.name);
    }
  }
}

function headOf(out: { ContentLength?: number; ETag?: string; Metadata?: Record<string, string>; LastModified?: Date; ContentRange?: string }): ObjectHead {
  // A ranged GET's Content-Length is the range's: the object's size is after the '/'.
  const whole = out.ContentRange === undefined ? undefined : Number(out.ContentRange.split('/')[1]);
  return {
    size: whole !== undefined && Number.isSafeInteger(whole) ? whole : (out.ContentLength ?? 0),
    etag: out.ETag ?? '',
    metadata: out.Metadata ?? {},
    ...(out.LastModified !== undefined ? { lastModified: out.LastModified.getTime() } : {}),
  };
}

export function mapS3Error(error: unknown, what: string, bucket: string): unknown {
  if (error instanceof FerryError) return error;
  const e = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  if (status === 404 || e.name === 'NoSuchKey' || e.name === 'NotFound' || e.name === 'NoSuchUpload') {
    if (e.name === 'NoSuchBucket') return new FerryError('INTERNAL', `S3 bucket ${bucket} does not exist`, { cause: error });
    return new FerryError('NOT_FOUND', `"${what}" not found`, { cause: error });
  }
  if (e.name === 'BadDigest' || e.name === 'InvalidDigest') return new FerryError('INTEGRITY', `the S3 store received other bytes than were sent for ${what}`, { cause: error });
  if (e.name === 'QuotaExceeded') {
    return new FerryError('QUOTA', `the S3 store's own quota for bucket ${bucket} is full (QuotaExceeded): remove files, or raise the bucket's quota in the object store`, { cause: error });
  }
  if (status === 412 || e.name === 'PreconditionFailed') return new FerryError('EXISTS', `"${what}" already exists`, { cause: error });
  if (status === 403) return new FerryError('INTERNAL', `the S3 store refused access to ${what === `bucket ${bucket}` ? what : `${what} in bucket ${bucket}`} (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)`, { cause: error });
  return new FerryError('INTERNAL', `S3 store: ${what}: ${e.name ?? 'error'}${e.message ? `: ${e.message}` : ''}`, { cause: error });
}
