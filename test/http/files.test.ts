import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { digestHex, makeSentinel, randomData, sha256, type Sentinel } from '../helpers/fixtures.js';
import { curl, rawGet, sha256b64, startHttp, untar, type HttpServer } from './helpers.js';

describe('http: files, ranges, conditionals, listings', () => {
  let server: HttpServer;
  let sentinel: Sentinel;
  const data = randomData(100_000);

  before(async () => {
    server = await startHttp();
    sentinel = await makeSentinel();
    const put = await fetch(`${server.base}/docs/data.bin`, { method: 'PUT', body: data });
    assert.equal(put.status, 201);
    assert.equal((await fetch(`${server.base}/docs/empty.txt`, { method: 'PUT', body: '' })).status, 201);
  });
  after(async () => {
    await sentinel.cleanup();
    await server.stop();
  });

  it('GET and HEAD a file: bytes, ETag and Repr-Digest from the stored sha256', async () => {
    const res = await fetch(`${server.base}/docs/data.bin`);
    assert.equal(res.status, 200);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(data));
    assert.equal(res.headers.get('repr-digest'), `sha-256=:${sha256b64(data)}:`);
    assert.equal(res.headers.get('etag'), `"${Buffer.from(sha256(data), 'hex').toString('base64url')}"`);
    assert.equal(res.headers.get('accept-ranges'), 'bytes');
    const head = await fetch(`${server.base}/docs/data.bin`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), '100000');
    assert.equal((await head.arrayBuffer()).byteLength, 0);
    assert.equal((await fetch(`${server.base}/docs/missing.bin`)).status, 404);
    const download = await fetch(`${server.base}/docs/data.bin?download=1`);
    assert.match(download.headers.get('content-disposition') ?? '', /^attachment; filename="data.bin"/);
    await download.arrayBuffer();
  });

  it('Range: one range, suffix, open end, past the end (416), malformed (ignored), several (the first), empty file', async () => {
    const get = (range: string, extra: Record<string, string> = {}): Promise<Response> => fetch(`${server.base}/docs/data.bin`, { headers: { Range: range, ...extra } });
    let res = await get('bytes=0-9');
    assert.equal(res.status, 206);
    assert.equal(res.headers.get('content-range'), 'bytes 0-9/100000');
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(data.subarray(0, 10)));
    res = await get('bytes=-100');
    assert.equal(res.status, 206);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(data.subarray(99_900)));
    res = await get('bytes=99990-');
    assert.equal(res.headers.get('content-range'), 'bytes 99990-99999/100000');
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(data.subarray(99_990)));
    res = await get('bytes=99990-200000');
    assert.equal(res.headers.get('content-range'), 'bytes 99990-99999/100000');
    await res.arrayBuffer();
    res = await get('bytes=100000-');
    assert.equal(res.status, 416);
    assert.equal(res.headers.get('content-range'), 'bytes */100000');
    await res.arrayBuffer();
    res = await get('bytes=abc');
    assert.equal(res.status, 200);
    assert.equal((await res.arrayBuffer()).byteLength, 100_000);
    res = await get('lines=1-2');
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    res = await get('bytes=50-59,0-9');
    assert.equal(res.status, 206);
    assert.equal(res.headers.get('content-range'), 'bytes 50-59/100000');
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(data.subarray(50, 60)));
    res = await get('bytes=0-4,3-9'); // overlapping: merged
    assert.equal(res.headers.get('content-range'), 'bytes 0-9/100000');
    await res.arrayBuffer();
    res = await fetch(`${server.base}/docs/empty.txt`, { headers: { Range: 'bytes=0-' } });
    assert.equal(res.status, 416);
    await res.arrayBuffer();
    res = await fetch(`${server.base}/docs/empty.txt`);
    assert.equal(res.status, 200);
    assert.equal((await res.arrayBuffer()).byteLength, 0);
  });

  it('conditional requests: If-None-Match, If-Match, If-Modified-Since, If-Unmodified-Since, If-Range', async () => {
    const first = await fetch(`${server.base}/docs/data.bin`, { method: 'HEAD' });
    const etag = first.headers.get('etag')!;
    const modified = first.headers.get('last-modified')!;
    const status = async (headers: Record<string, string>): Promise<number> => {
      const res = await fetch(`${server.base}/docs/data.bin`, { headers });
      await res.arrayBuffer();
      return res.status;
    };
    assert.equal(await status({ 'If-None-Match': etag }), 304);
    assert.equal(await status({ 'If-None-Match': `"other", W/${etag}` }), 304);
    assert.equal(await status({ 'If-None-Match': '*' }), 304);
    assert.equal(await status({ 'If-None-Match': '"other"' }), 200);
    assert.equal(await status({ 'If-Match': etag }), 200);
    assert.equal(await status({ 'If-Match': '"other"' }), 412);
    assert.equal(await status({ 'If-Match': `W/${etag}` }), 412); // strong comparison
    assert.equal(await status({ 'If-Modified-Since': modified }), 304);
    assert.equal(await status({ 'If-Modified-Since': 'Thu, 01 Jan 1970 00:00:00 GMT' }), 200);
    assert.equal(await status({ 'If-Unmodified-Since': 'Thu, 01 Jan 1970 00:00:00 GMT' }), 412);
    assert.equal(await status({ 'If-Unmodified-Since': modified }), 200);
    // If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
    assert.equal(await status({ 'If-None-Match': '"other"', 'If-Modified-Since': modified }), 200);
    assert.equal(await status({ Range: 'bytes=0-0', 'If-Range': etag }), 206);
    assert.equal(await status({ Range: 'bytes=0-0', 'If-Range': '"stale"' }), 200);
    assert.equal(await status({ Range: 'bytes=0-0', 'If-Range': modified }), 206);
    assert.equal(await status({ Range: 'bytes=0-0', 'If-Range': 'Thu, 01 Jan 1970 00:00:00 GMT' }), 200);
  });

  it('nothing outside the root is reachable by any encoding', async () => {
    const outside = path.relative(server.root, sentinel.file);
    const hostile: [string, number][] = [
      [`/../${outside}`, 400],
      ['/../../../../etc/passwd', 400],
      ['/docs/../../etc/passwd', 400],
      ['/%2e%2e/%2e%2e/etc/passwd', 400],
      ['/%2E%2E/etc/passwd', 400],
      ['/docs/%2e%2e%2f%2e%2e%2fetc%2fpasswd', 400],
      ['/..%2fetc%2fpasswd', 400],
      ['/..%5c..%5cetc%5cpasswd', 400],
      ['/docs\\..\\..\\etc\\passwd', 400],
      ['/%5c..%5c..%5cetc', 400],
      ['/docs/data.bin%00.txt', 400],
      ['/%00', 400],
      ['/%c0%ae%c0%ae/etc/passwd', 400], // overlong UTF-8 for "."
      ['/%e0%80%ae%e0%80%ae/etc/passwd', 400],
      ['/%ff', 400],
      ['/%', 400],
      ['/./docs/data.bin', 400],
      ['//etc/passwd', 400],
      ['/.ferry/tmp/', 404],
      ['/.ferry/meta', 404],
      ['/.FERRY/tmp/', 400],
      ['/%2eferry/tmp/', 400],
      ['/.Ferry/partial', 400],
      ['/%252e%252e/etc/passwd', 404], // decoded once: the literal name "%2e%2e/etc/passwd", not stored
      ['/docs/%252e%252e/data.bin', 404],
      ['http://evil/../etc/passwd', 400],
    ];
    for (const [target, expected] of hostile) {
      const res = await rawGet(server.httpPort, target);
      assert.equal(res.status, expected, `${target}: ${res.status} ${res.body.toString()}`);
      assert.ok(!res.body.includes('sentinel'), target);
      assert.ok(!res.body.includes('root:'), target);
    }
    // A literal "%2e%2e" name is an ordinary name inside the root (PROTOCOL.md §6).
    assert.equal((await fetch(`${server.base}/%252e%252e`, { method: 'PUT', body: 'odd' })).status, 201);
    assert.equal(await fs.readFile(path.join(server.root, '%2e%2e'), 'utf8'), 'odd');
    assert.equal((await rawGet(server.httpPort, '/%252e%252e')).body.toString(), 'odd');
    // curl without its own normalisation (--path-as-is) gets the same answers.
    const res = await curl(['--path-as-is', '-o', '/dev/null', '-w', '%{http_code}', `${server.base}/docs/../../etc/passwd`]);
    assert.equal(res.stdout.toString(), '400');
    await sentinel.assertUntouched();
  });

  it('a folder: JSON listing, HTML page with every name escaped, redirect to the slash, 404 when missing', async () => {
    assert.equal((await fetch(`${server.base}/docs/sub/<b>&"x'.txt`, { method: 'PUT', body: 'x' })).status, 201);
    const res = await fetch(`${server.base}/docs/`, { headers: { Accept: 'application/json' } });
    assert.equal(res.status, 200);
    const entries = (await res.json()) as { name: string; path: string; kind: string; size: number | null; mtime: string | null; digest: string | null }[];
    assert.deepEqual(
      entries.map((e) => [e.name, e.kind, e.size]),
      [
        ['data.bin', 'file', 100_000],
        ['empty.txt', 'file', 0],
        ['sub', 'folder', null],
      ],
    );
    assert.equal(entries[0]!.path, 'docs/data.bin');
    assert.equal(entries[0]!.digest, `blake3:${digestHex('blake3', data)}`, 'listings show the digest ferry clients use');
    assert.ok(Number.isFinite(Date.parse(entries[0]!.mtime!)));
    const page = await fetch(`${server.base}/docs/sub/`, { headers: { Accept: 'text/html' } });
    assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    const html = await page.text();
    assert.ok(html.includes('&#60;b&#62;&#38;&#34;x&#39;.txt'), html);
    assert.ok(!html.includes('<b>&"x'));
    assert.ok(html.includes('href="/docs/sub/%3Cb%3E%26%22x&#39;.txt"'), 'links are percent-encoded');
    const redirect = await fetch(`${server.base}/docs`, { redirect: 'manual' });
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.get('location'), '/docs/');
    assert.equal((await fetch(`${server.base}/nothing/`)).status, 404);
    const root = (await (await fetch(`${server.base}/`, { headers: { Accept: 'application/json' } })).json()) as { name: string }[];
    assert.ok(root.some((e) => e.name === 'docs'));
    assert.ok(!root.some((e) => e.name === '.ferry'));
  });

  it('a folder as a streamed tar: every file, with its bytes', async () => {
    const res = await fetch(`${server.base}/docs/?download=tar`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/x-tar');
    assert.match(res.headers.get('content-disposition') ?? '', /filename="docs.tar"/);
    const files = await untar(Buffer.from(await res.arrayBuffer()));
    assert.deepEqual([...files.keys()].sort(), ['docs/data.bin', 'docs/empty.txt', 'docs/sub/<b>&"x\'.txt']);
    assert.equal(sha256(files.get('docs/data.bin')!), sha256(data));
    assert.equal((await fetch(`${server.base}/nothing/?download=tar`)).status, 404);
  });

  it('page assets are served from the build; other .ferry paths are not', async () => {
    const js = await fetch(`${server.base}/.ferry/web/app.js`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /javascript/);
    await js.arrayBuffer();
    assert.equal((await fetch(`${server.base}/.ferry/web/../tmp`)).status, 404);
    assert.equal((await rawGet(server.httpPort, '/.ferry/web/%2e%2e/%2e%2e/package.json')).status, 404);
  });
});
