// Test data: random files and trees, sha256 manifests, verification.
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, stat, writeFile, lstat } from 'node:fs/promises';
import path from 'node:path';

const MiB = 1024 * 1024;

/** Writes `size` random bytes to file (4 MiB buffer refilled each time; no whole file in memory). */
export async function makeRandomFile(file: string, size: number): Promise<void> {
  const fh = await open(file, 'w', 0o644);
  try {
    const buf = Buffer.allocUnsafe(Math.min(4 * MiB, Math.max(size, 1)));
    let left = size;
    while (left > 0) {
      const n = Math.min(left, buf.length);
      randomFillSync(buf, 0, n);
      await fh.write(buf, 0, n);
      left -= n;
    }
  } finally {
    await fh.close();
  }
}

/** A tree of `count` random files of `size` bytes, 100 per sub-folder: d000/f00000.bin ... */
export async function makeTree(dir: string, count: number, size: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < count; i++) {
    const sub = path.join(dir, `d${String(Math.floor(i / 100)).padStart(3, '0')}`);
    if (i % 100 === 0) await mkdir(sub, { recursive: true });
    await writeFile(path.join(sub, `f${String(i).padStart(5, '0')}.bin`), randomFillSync(Buffer.allocUnsafe(size)), { mode: 0o644 });
  }
}

export async function sha256File(file: string): Promise<{ size: number; sha256: string }> {
  const h = createHash('sha256');
  let size = 0;
  await new Promise<void>((resolve, reject) => {
    const rs = createReadStream(file, { highWaterMark: MiB });
    rs.on('data', (chunk) => {
      const b = chunk as Buffer;
      size += b.length;
      h.update(b);
    });
    rs.on('error', reject);
    rs.on('end', () => resolve());
  });
  return { size, sha256: h.digest('hex') };
}

export type Manifest = Map<string, { size: number; sha256: string }>;

async function walk(dir: string, rel: string, out: string[]): Promise<void> {
  const ents = await readdir(path.join(dir, rel), { withFileTypes: true });
  for (const e of ents) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) await walk(dir, r, out);
    else out.push(r);
  }
}

/** relative path → size + sha256 for every file under dir (hashed a few at a time). */
export async function manifest(dir: string): Promise<Manifest> {
  const files: string[] = [];
  await walk(dir, '', files);
  files.sort();
  const m: Manifest = new Map();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const f = files[next++];
      if (f === undefined) break;
      m.set(f, await sha256File(path.join(dir, f)));
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return m;
}

/** Returns null if `file` has exactly the expected size and sha256, else what differs. */
export async function verifyFile(file: string, want: { size: number; sha256: string }): Promise<string | null> {
  try {
    const st = await lstat(file);
    if (!st.isFile()) return `${file} is not a regular file`;
    if (st.size !== want.size) return `size ${st.size} != ${want.size}`;
    const got = await sha256File(file);
    if (got.sha256 !== want.sha256) return `sha256 mismatch (${got.sha256.slice(0, 12)}… != ${want.sha256.slice(0, 12)}…)`;
    return null;
  } catch (err) {
    return `cannot read result: ${(err as Error).message}`;
  }
}

/** Returns null if dir holds exactly the files of `want` with the same contents. */
export async function verifyTree(dir: string, want: Manifest): Promise<string | null> {
  try {
    const st = await stat(dir);
    if (!st.isDirectory()) return `${dir} is not a directory`;
    const got = await manifest(dir);
    const missing = [...want.keys()].filter((k) => !got.has(k));
    const extra = [...got.keys()].filter((k) => !want.has(k));
    if (missing.length || extra.length) {
      return `${got.size} files, ${missing.length} missing (e.g. ${missing[0] ?? '-'}), ${extra.length} unexpected (e.g. ${extra[0] ?? '-'})`;
    }
    for (const [k, v] of want) {
      const g = got.get(k);
      if (!g || g.sha256 !== v.sha256 || g.size !== v.size) return `content differs: ${k}`;
    }
    return null;
  } catch (err) {
    return `cannot read result tree: ${(err as Error).message}`;
  }
}
