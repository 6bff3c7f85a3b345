// The S3 peer of `npm run bench:s3`: what `aws s3 cp` does, with @aws-sdk/client-s3 and the
// AWS CLI's defaults (multipart from 8 MiB in 8 MiB parts, ranged GETs of 8 MiB, 10 requests
// at once), so ferry's S3 backend is compared with the plain transfer a user would script.
//   node s3-sdk.js put FILE KEY | get KEY FILE | put-tree DIR PREFIX | get-tree PREFIX DIR | delete-prefix PREFIX
// The store comes from S3_ENDPOINT, S3_BUCKET and AWS_* (path-style, checksums only when required).
import { mkdir, open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';

const PART = 8 * 1024 * 1024;
const CONCURRENCY = 10;

const client = new S3Client({
  endpoint: process.env.S3_ENDPOINT,
  region: process.env.AWS_REGION ?? 'us-east-1',
  forcePathStyle: true,
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});
const Bucket = process.env.S3_BUCKET!;

/** Runs `work` on each item, `CONCURRENCY` at once. */
async function each<T>(items: T[], work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, items.length) }, lane));
}

async function readPart(file: string, start: number, length: number): Promise<Buffer> {
  const handle = await open(file);
  try {
    const buffer = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) done += (await handle.read(buffer, done, length - done, start + done)).bytesRead;
    return buffer;
  } finally {
    await handle.close();
  }
}

async function put(file: string, Key: string): Promise<void> {
  const { size } = await stat(file);
  if (size < PART) {
    await client.send(new PutObjectCommand({ Bucket, Key, Body: await readFile(file) }));
    return;
  }
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket, Key }));
  const parts: { PartNumber: number; ETag?: string }[] = [];
  const numbers = Array.from({ length: Math.ceil(size / PART) }, (_, i) => i + 1);
  await each(numbers, async (PartNumber) => {
    const start = (PartNumber - 1) * PART;
    const Body = await readPart(file, start, Math.min(PART, size - start));
    const { ETag } = await client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body }));
    parts.push({ PartNumber, ETag });
  });
  parts.sort((a, b) => a.PartNumber - b.PartNumber);
  await client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts } }));
}

async function get(Key: string, file: string): Promise<void> {
  const { ContentLength: size = 0 } = await client.send(new HeadObjectCommand({ Bucket, Key }));
  await mkdir(path.dirname(file), { recursive: true });
  const handle = await open(file, 'w');
  try {
    const starts = Array.from({ length: Math.max(1, Math.ceil(size / PART)) }, (_, i) => i * PART);
    await each(starts, async (start) => {
      if (size === 0) return;
      const end = Math.min(size, start + PART) - 1;
      const { Body } = await client.send(new GetObjectCommand({ Bucket, Key, Range: `bytes=${start}-${end}` }));
      let at = start;
      for await (const chunk of Body as AsyncIterable<Buffer>) {
        await handle.write(chunk, 0, chunk.length, at);
        at += chunk.length;
      }
    });
  } finally {
    await handle.close();
  }
}

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(path.relative(dir, path.join(entry.parentPath ?? entry.path, entry.name)));
  }
  return out;
}

async function putTree(dir: string, prefix: string): Promise<void> {
  await each(await files(dir), (rel) => put(path.join(dir, rel), `${prefix}${rel}`));
}

async function keysUnder(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let ContinuationToken: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket, Prefix: prefix, ContinuationToken }));
    for (const object of page.Contents ?? []) keys.push(object.Key!);
    ContinuationToken = page.NextContinuationToken;
  } while (ContinuationToken);
  return keys;
}

/** Removes everything under `prefix` (the bench's scratch space). */
async function deletePrefix(prefix: string): Promise<void> {
  const keys = await keysUnder(prefix);
  for (let i = 0; i < keys.length; i += 1000) {
    await client.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })) } }));
  }
}

async function getTree(prefix: string, dir: string): Promise<void> {
  const keys = await keysUnder(prefix);
  await each(keys, async (Key) => {
    const { Body } = await client.send(new GetObjectCommand({ Bucket, Key }));
    const file = path.join(dir, Key.slice(prefix.length));
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, Body as AsyncIterable<Buffer>);
  });
}

const [verb, a, b] = process.argv.slice(2);
const verbs: Record<string, () => Promise<void>> = {
  put: () => put(a!, b!),
  get: () => get(a!, b!),
  'put-tree': () => putTree(a!, b!),
  'get-tree': () => getTree(a!, b!),
  'delete-prefix': () => deletePrefix(a!),
};
const run = verbs[verb ?? ''];
if (!run || !a || (!b && verb !== 'delete-prefix')) {
  console.error('usage: s3-sdk put FILE KEY | get KEY FILE | put-tree DIR PREFIX | get-tree PREFIX DIR | delete-prefix PREFIX');
  process.exit(2);
}
run().then(
  () => client.destroy(),
  (error: unknown) => {
    console.error(`s3-sdk ${verb}: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
