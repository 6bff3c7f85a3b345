// `node dist/bench/s3.js`: ferry's S3 store against plain AWS SDK transfers, in the same run,
// on the store in S3_ENDPOINT / S3_BUCKET / AWS_* (scripts/s3-local/with-s3.sh provides a
// local Ceph RGW): 1 GiB put and get, and 1,000 × 4 KiB files put and get. The SDK rows are what
// `aws s3 cp` does: multipart uploads of 8 MiB parts, 4 at once; one GET streamed to a file;
// small files 16 at once. Prints a Markdown table (and writes it to --out FILE if given).
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { Bucket } from '../src/storage/s3/bucket.js';
import type { S3Location } from '../src/storage/s3/location.js';
import { FERRY_CLI } from './lib/context.js';

const GiB = 1024 ** 3;
const PART = 8 * 1024 * 1024;
const SMALL = 1000;
const SMALL_SIZE = 4096;

function run(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FERRY_CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ferry ${args.join(' ')}: ${code} ${err}`))));
  });
}

async function timed(work: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await work();
  return (performance.now() - start) / 1000;
}

async function sdkPut(bucket: Bucket, key: string, file: string, size: number): Promise<void> {
  const uploadId = await bucket.createMultipart(key);
  const parts: { number: number; etag: string }[] = [];
  const handle = await fs.open(file);
  try {
    let next = 0;
    const count = Math.ceil(size / PART);
    const worker = async (): Promise<void> => {
      while (next < count) {
        const index = next++;
        const body = Buffer.allocUnsafe(Math.min(PART, size - index * PART));
        await handle.read(body, 0, body.length, index * PART);
        parts[index] = { number: index + 1, etag: await bucket.uploadPart(key, uploadId, index + 1, body) };
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
  } finally {
    await handle.close();
  }
  await bucket.completeMultipart(key, uploadId, parts);
}

async function pool(count: number, width: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < count) await work(next++);
  }));
}

async function main(): Promise<void> {
  const endpoint = process.env.S3_ENDPOINT;
  const bucketName = process.env.S3_BUCKET;
  if (!endpoint || !bucketName) throw new Error('set S3_ENDPOINT, S3_BUCKET and AWS_* (scripts/s3-local/with-s3.sh node dist/bench/s3.js)');
  const outIndex = process.argv.indexOf('--out');
  const size = process.argv.includes('--quick') ? 64 * 1024 * 1024 : GiB;
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'ferry-s3-bench-'));
  const prefix = `bench-${Date.now()}/`;
  const location: S3Location = { endpoint, bucket: bucketName, prefix };
  const bucket = await Bucket.open(location);
  const server = spawn(process.execPath, [FERRY_CLI, 'serve', '--port', '0', '--root', path.join(work, 'state'), '--store', `s3://${bucketName}/${prefix}ferry`, '--s3-endpoint', endpoint], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      const onData = (d: Buffer): void => {
        out += d.toString();
        const match = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
        if (match) resolve(Number(match[1]));
      };
      server.stdout.on('data', onData);
      server.stderr.on('data', onData);
      server.on('close', () => reject(new Error(`server exited: ${out}`)));
    });
    const at = `127.0.0.1:${port}`;
    const big = path.join(work, 'big.bin');
    await pipeline(createReadStream('/dev/urandom', { end: size - 1 }), createWriteStream(big));
    const tree = path.join(work, 'tree');
    await fs.mkdir(tree);
    for (let i = 0; i < SMALL; i++) await fs.writeFile(path.join(tree, `f${String(i).padStart(4, '0')}.bin`), (await import('node:crypto')).randomBytes(SMALL_SIZE));
    const rows: [string, number, number][] = [];
    const mib = size / 1024 / 1024;
    rows.push(['ferry put (1 file)', mib, await timed(() => run(['put', '-s', at, big, '--as', 'big.bin']))]);
    rows.push(['SDK multipart put (8 MiB × 4)', mib, await timed(() => sdkPut(bucket, `${prefix}sdk/big.bin`, big, size))]);
    rows.push(['ferry get (1 file)', mib, await timed(() => run(['get', '-s', at, 'big.bin', '-o', path.join(work, 'ferry-out.bin')]))]);
    rows.push(['SDK get (1 stream)', mib, await timed(async () => pipeline((await bucket.get(`${prefix}sdk/big.bin`)) as Readable, createWriteStream(path.join(work, 'sdk-out.bin'))))]);
    const treeMiB = (SMALL * SMALL_SIZE) / 1024 / 1024;
    rows.push([`ferry put -r (${SMALL} × 4 KiB)`, treeMiB, await timed(() => run(['put', '-s', at, '-r', tree]))]);
    const names = (await fs.readdir(tree)).sort();
    rows.push([`SDK put (${SMALL} × 4 KiB, 16 at once)`, treeMiB, await timed(() => pool(names.length, 16, async (i) => bucket.put(`${prefix}sdk/tree/${names[i]}`, Buffer.alloc(SMALL_SIZE, i))))]);
    const down = path.join(work, 'down');
    await fs.mkdir(down);
    rows.push([`ferry get -r (${SMALL} × 4 KiB)`, treeMiB, await timed(() => run(['get', '-s', at, '-r', 'tree', '-o', down]))]);
    rows.push([`SDK get (${SMALL} × 4 KiB, 16 at once)`, treeMiB, await timed(() => pool(names.length, 16, async (i) => {
      for await (const chunk of await bucket.get(`${prefix}sdk/tree/${names[i]}`)) void chunk;
    }))]);
    const lines = ['| transfer | MiB | seconds | MiB/s |', '| --- | ---: | ---: | ---: |', ...rows.map(([what, n, s]) => `| ${what} | ${n.toFixed(0)} | ${s.toFixed(2)} | ${(n / s).toFixed(1)} |`)];
    const report = `${lines.join('\n')}\n`;
    process.stdout.write(report);
    if (outIndex > 0) await fs.writeFile(process.argv[outIndex + 1]!, report);
  } finally {
    server.kill('SIGTERM');
    for (;;) {
      const page = await bucket.list(prefix);
      if (page.keys.length === 0) break;
      await bucket.deleteMany(page.keys.map((k) => k.key));
    }
    bucket.close();
    await fs.rm(work, { recursive: true, force: true });
  }
}

await main();
