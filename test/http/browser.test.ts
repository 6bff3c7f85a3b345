import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { digestHex, randomData, sha256, tempDir } from '../helpers/fixtures.js';
import { startHttp, untar, type HttpServer } from './helpers.js';
import { cuttingProxy, type CuttingProxy } from './proxy.js';

const CHROMIUM = '/usr/bin/chromium';

type PageGlobals = { document: { querySelectorAll(selector: string): { length: number } } };

/** Runs in the page (a function, not a string: the page's policy forbids eval): `count` transfers have finished, well or not. */
function settled(count: number): boolean {
  return (globalThis as unknown as PageGlobals).document.querySelectorAll('.transfer.ok, .transfer.failed').length === count;
}

if (!existsSync(CHROMIUM)) {
  describe('http: the web page in a real browser', () => {
    it.skip(`skipped: ${CHROMIUM} is not installed (scripts/test-tools.sh installs Debian's chromium)`, () => undefined);
  });
} else {
  describe('http: the web page in a real browser (headless Chromium)', () => {
    let server: HttpServer;
    let proxy: CuttingProxy;
    let browser: Browser;
    let page: Page;
    let dir: string;
    let base: string;

    before(async () => {
      server = await startHttp();
      // The browser goes through a proxy that drops the first upload connection mid-way.
      proxy = await cuttingProxy(server.httpPort, 3 * 1024 * 1024);
      base = `http://127.0.0.1:${proxy.port}`;
      dir = await tempDir('ferry-browser-');
      browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
      const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1000, height: 800 } });
      page = await context.newPage();
      await fetch(`${server.base}/photos/`, { method: 'PUT' });
      await fetch(`${server.base}/notes.txt`, { method: 'PUT', body: 'notes\n' });
    });
    after(async () => {
      await browser?.close();
      await proxy?.close();
      await server?.stop();
      await fs.rm(dir, { recursive: true, force: true });
    });

    it('uploads through the file input: progress, an interrupted large file resumed, verified digests', async () => {
      await page.goto(`${base}/photos/`);
      await page.waitForSelector('#listing');
      await page.evaluate(`(() => {
        const seen = (window.seen = []);
        new MutationObserver(() => {
          for (const bar of document.querySelectorAll('progress')) seen.push(bar.value);
        }).observe(document.getElementById('transfers'), { subtree: true, attributes: true, childList: true, characterData: true });
      })()`);
      const large = randomData(12 * 1024 * 1024);
      const small = Buffer.from('hello from the browser\n');
      await page.setInputFiles('#pick-files', [
        { name: 'small.txt', mimeType: 'text/plain', buffer: small },
        { name: 'large.bin', mimeType: 'application/octet-stream', buffer: large },
      ]);
      await page.waitForFunction(settled, 2, { timeout: 60_000 });
      const statuses = await page.$$eval('.transfer', (rows) => rows.map((r) => `${r.className}: ${r.textContent}`));
      assert.equal(statuses.filter((s) => s.includes('verified ✓')).length, 2, statuses.join('\n'));
      assert.equal(proxy.cuts(), 1, 'the large upload was interrupted once, and resumed');
      const seen = (await page.evaluate('window.seen')) as number[];
      assert.ok(seen.some((v) => v > 0.1 && v < 1), 'progress was shown between start and end');
      assert.equal(sha256(await fs.readFile(path.join(server.root, 'photos/large.bin'))), sha256(large));
      assert.equal(await fs.readFile(path.join(server.root, 'photos/small.txt'), 'utf8'), small.toString());
      await page.waitForSelector('#listing tr[data-name="large.bin"]');
    });

    it('uploads by drag and drop and a whole folder; a failed file says why', async () => {
      // small.txt exists: refused, with its reason on its row.
      await page.evaluate(`(() => {
        const transfer = new DataTransfer();
        transfer.items.add(new File(['dropped bytes\\n'], 'dropped.txt', { type: 'text/plain' }));
        transfer.items.add(new File(['notes again\\n'], 'small.txt', { type: 'text/plain' }));
        document.getElementById('drop').dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
      })()`);
      await page.waitForFunction(settled, 4, { timeout: 30_000 });
      const failed = await page.$$eval('.transfer.failed', (rows) => rows.map((r) => r.textContent ?? ''));
      assert.equal(failed.length, 1);
      assert.match(failed[0]!, /small\.txt.*already exists.*EXISTS/s);
      assert.equal(await fs.readFile(path.join(server.root, 'photos/dropped.txt'), 'utf8'), 'dropped bytes\n');
      const tree = path.join(dir, 'album');
      await fs.mkdir(path.join(tree, 'day1'), { recursive: true });
      await fs.writeFile(path.join(tree, 'day1', 'a.jpg'), randomData(5000));
      await fs.writeFile(path.join(tree, 'b.jpg'), randomData(7000));
      await page.setInputFiles('#pick-folder', tree);
      await page.waitForFunction(settled, 6, { timeout: 30_000 });
      assert.equal(sha256(await fs.readFile(path.join(server.root, 'photos/album/day1/a.jpg'))), sha256(await fs.readFile(path.join(tree, 'day1', 'a.jpg'))));
      assert.equal(sha256(await fs.readFile(path.join(server.root, 'photos/album/b.jpg'))), sha256(await fs.readFile(path.join(tree, 'b.jpg'))));
    });

    it('sorts with the keyboard, shows digests on demand, has breadcrumbs', async () => {
      await page.goto(`${base}/photos/`);
      await page.focus('button[data-sort="size"]');
      await page.keyboard.press('Enter');
      let names = await page.$$eval('#listing tbody tr[data-kind="file"]', (rows) => rows.map((r) => r.getAttribute('data-name')));
      assert.deepEqual(names, ['large.bin', 'small.txt', 'dropped.txt'], 'largest first');
      assert.equal(await page.getAttribute('th:nth-child(2)', 'aria-sort'), 'descending');
      await page.keyboard.press('Enter');
      names = await page.$$eval('#listing tbody tr[data-kind="file"]', (rows) => rows.map((r) => r.getAttribute('data-name')));
      assert.deepEqual(names, ['dropped.txt', 'small.txt', 'large.bin']);
      assert.equal(await page.getAttribute('th:nth-child(2)', 'aria-sort'), 'ascending');
      await page.click('tr[data-name="large.bin"] button.show-digest');
      const digest = await page.textContent('tr[data-name="large.bin"] code.digest');
      assert.equal(digest, `blake3:${digestHex('blake3', await fs.readFile(path.join(server.root, 'photos/large.bin')))}`, 'listings show the digest ferry clients use');
      const crumbs = await page.$$eval('nav .crumbs a', (links) => links.map((a) => a.textContent));
      assert.deepEqual(crumbs, ['ferry', 'photos']);
      await page.screenshot({ path: path.join(dir, 'listing.png'), fullPage: true });
      if (process.env.FERRY_WEB_SCREENSHOT) await page.screenshot({ path: process.env.FERRY_WEB_SCREENSHOT, fullPage: true });
      assert.ok((await fs.stat(path.join(dir, 'listing.png'))).size > 1000);
    });

    it('downloads a file and a folder (tar) with the same digests', async () => {
      await page.goto(`${base}/photos/`);
      await page.$eval('a.file[href$="large.bin"]', (a) => a.setAttribute('download', ''));
      let wait = page.waitForEvent('download');
      await page.click('a.file[href$="large.bin"]');
      let download = await wait;
      const file = path.join(dir, 'large-copy.bin');
      await download.saveAs(file);
      assert.equal(sha256(await fs.readFile(file)), sha256(await fs.readFile(path.join(server.root, 'photos/large.bin'))));
      wait = page.waitForEvent('download');
      await page.click('.folder-actions a');
      download = await wait;
      const archive = path.join(dir, 'photos.tar');
      await download.saveAs(archive);
      const files = await untar(await fs.readFile(archive));
      assert.deepEqual([...files.keys()].sort(), ['photos/album/b.jpg', 'photos/album/day1/a.jpg', 'photos/dropped.txt', 'photos/large.bin', 'photos/small.txt']);
      for (const [name, bytes] of files) assert.equal(sha256(bytes), sha256(await fs.readFile(path.join(server.root, name))), name);
    });

    it('is readable on a phone-sized screen', async () => {
      await page.setViewportSize({ width: 375, height: 700 });
      await page.goto(`${base}/photos/`);
      const overflow = (await page.evaluate('document.documentElement.scrollWidth - window.innerWidth')) as number;
      assert.ok(overflow <= 0, `no sideways scrolling (${overflow}px too wide)`);
    });
  });
}
