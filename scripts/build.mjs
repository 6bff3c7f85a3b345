// Builds dist/ without ever leaving it half-built: tsc and the CLI bundle go to a fresh folder
// beside it, which then replaces dist/ by rename. A server started from dist/ (`npm start &`)
// keeps running while `npx ferry …` or `npm install` rebuilds.
//
//   node scripts/build.mjs             always build (npm run build, npm test)
//   node scripts/build.mjs --if-stale  skip when dist/ is newer than every input (npm prepare)
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const dist = path.join(root, 'dist');
const STAMP = '.build-stamp';
/** What the build reads: a change to any of these makes dist/ stale. */
const INPUTS = ['src', 'test', 'bench', 'scripts', 'tsconfig.json', 'package.json'];

async function newestInput(entry) {
  const stats = await fs.stat(entry).catch(() => undefined);
  if (stats === undefined) return 0;
  if (!stats.isDirectory()) return stats.mtimeMs;
  let newest = stats.mtimeMs;
  for (const child of await fs.readdir(entry)) newest = Math.max(newest, await newestInput(path.join(entry, child)));
  return newest;
}

async function isCurrent() {
  const stamp = await fs.stat(path.join(dist, STAMP)).catch(() => undefined);
  if (stamp === undefined) return false;
  let newest = 0;
  for (const input of INPUTS) newest = Math.max(newest, await newestInput(path.join(root, input)));
  return newest <= stamp.mtimeMs;
}

/**
 * The HTTP door's web page (src/http/web/): its script, with tus-js-client, bundled for browsers
 * into <out>/web/, where the server finds it (src/http/assets.ts); no step to run by hand.
 */
async function bundleWebPage(out) {
  const web = path.join(root, 'src', 'http', 'web');
  if (!existsSync(path.join(web, 'app.js'))) return; // a checkout without the page (the set-up test's tiny project)
  const { build } = await import('esbuild');
  await build({
    entryPoints: [path.join(web, 'app.js')],
    outfile: path.join(out, 'web', 'app.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2020'],
    minify: true,
    sourcemap: true,
    logLevel: 'warning',
  });
  await fs.copyFile(path.join(web, 'app.css'), path.join(out, 'web', 'app.css'));
}

if (process.argv.includes('--if-stale') && (await isCurrent())) {
  console.log('dist/ is up to date (npm run build rebuilds it anyway)');
  process.exit(0);
}

const building = path.join(root, `dist.building-${process.pid}`);
const retired = path.join(root, `dist.old-${process.pid}`);
await fs.rm(building, { recursive: true, force: true });
try {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json', '--outDir', building, '--tsBuildInfoFile', path.join(building, '.tsbuildinfo')], {
    cwd: root,
    stdio: 'inherit',
  });
  execFileSync(process.execPath, [path.join(root, 'scripts', 'bundle-cli.mjs'), building], { cwd: root, stdio: 'inherit' });
  await bundleWebPage(building);
  await fs.writeFile(path.join(building, STAMP), `${new Date().toISOString()}\n`);
  // The swap: two renames, so dist/ is missing for an instant at most and never half-written.
  if (existsSync(dist)) await fs.rename(dist, retired);
  await fs.rename(building, dist);
  await fs.rm(retired, { recursive: true, force: true });
} catch (error) {
  await fs.rm(building, { recursive: true, force: true });
  console.error(`build failed; dist/ is left as it was${error.status === undefined ? `: ${error.message}` : ''}`);
  process.exit(1);
}
