// Bundles the compiled CLI (dist/src) into dist/bin/ so `ferry` starts by reading a few files
// instead of resolving ~40 modules: measured ~15% faster cold start (bench/RESULTS.md).
// Dynamic imports stay separate chunks, loaded only by the commands that need them.
//
// dist/bin/cli/ is a CommonJS folder (its own package.json): the bin, main.js, is a tiny
// CommonJS launcher that answers `ferry --version` itself — a CommonJS file starts ~10 ms
// (≈ 0.2× `node -e 0`) sooner than an ES module, and neither commander nor the client load —
// runs a plain `ls` or `stat` with quick.js (one CommonJS file: the listing client alone,
// compiled from a V8 code cache; `ferry ls` 156 → 82 ms), and otherwise imports main.mjs, the
// CLI as ES modules (*.mjs chunks). The digester thread, which src/io finds as
// ./digester-thread.js beside its chunk, is built as CommonJS.
import { chmodSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { build } from 'esbuild';

// The compiled output to bundle: dist/ unless another folder is given (scripts/build.mjs builds beside dist/).
const out = process.argv[2] ?? 'dist';
const outdir = path.join(out, 'bin/cli'); // three levels deep, like dist/src/cli: main.mjs finds ../../../package.json

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  // pino loads worker files by path, selfsigned pulls in node-forge, and the BLAKE3 binding
  // loads a native addon: leave them to node_modules.
  external: ['pino', 'selfsigned', '@napi-rs/blake-hash', '@aws-sdk/client-s3'],
  sourcemap: true,
  logLevel: 'warning',
};

await build({
  ...common,
  entryPoints: [path.join(out, 'src/cli/main.js')],
  entryNames: '[name]',
  outdir,
  outExtension: { '.js': '.mjs' },
  splitting: true,
  format: 'esm',
  banner: { js: "import { createRequire as __ferryRequire } from 'node:module'; const require = __ferryRequire(import.meta.url);" },
});

// The quick paths: `ferry ls` and `ferry stat` (src/cli/quick.ts) in quick.js, a plain
// `ferry get` of one file (src/cli/quick-get.ts) in quick-get.js, a plain `ferry put` of one
// file (src/cli/quick-put.ts) in quick-put.js. Each is one CommonJS file, so the commonest
// commands skip the ES module loader and commander; one per command, so `ls` loads no
// transfer code and `get` no upload code.
/**
 * In a quick file, CommonJS, createRequire(import.meta.url) is the require the file is given
 * (the launcher's, same folder): node:module itself would load the ES module loader (~0.5 ms).
 */
const ownRequire = {
  name: 'own-require',
  setup(bundle) {
    bundle.onResolve({ filter: /^node:module$/ }, () => ({ path: 'node:module', namespace: 'own-require' }));
    bundle.onLoad({ filter: /.*/, namespace: 'own-require' }, () => ({ contents: 'export function createRequire() { return require; }', loader: 'js' }));
  },
};
// Each quick file is compiled in a function wrapper like CommonJS's own, by vm.Script, which
// takes no dynamic import().
const QUICK_WRAPPER = ['(function (exports, require, module, __filename, __dirname) { ', '\n})'];

/**
 * Bundles src/cli/<entry>.js into <outdir>/<entry>.js, and writes its V8 code cache beside it,
 * made here by the Node that builds (the launcher uses it only when the same Node version and
 * flags run it; V8 checks, and otherwise compiles from source). Compiled with V8's lazy
 * compilation off, so the cache holds every function's bytecode, not only the top level's:
 * the functions the command runs need no compiling either. Instructions per `ferry ls`
 * (valgrind, 2 runs each): no cache 149 M, a top-level cache 141 M, this 131 M.
 * `fileUrl`: the file hashes, so import.meta.url must be its real file URL (the digester
 * finds its thread file by it); elsewhere only createRequire takes it, and ignores it.
 */
async function buildQuick(entry, { fileUrl = false } = {}) {
  const file = path.join(outdir, `${entry}.js`);
  await build({
    ...common,
    entryPoints: [path.join(out, `src/cli/${entry}.js`)],
    outfile: file,
    format: 'cjs',
    plugins: [ownRequire],
    // Whitespace and syntax only (names stay, for stack traces): a smaller file to read, and
    // ~3% fewer instructions per quick `get` (valgrind, 3 runs each: 156-159 M against 162-164 M).
    minifyWhitespace: true,
    minifySyntax: true,
    ...(fileUrl
      ? {
          banner: { js: "'use strict';\nvar __ferryImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
          define: { 'import.meta.url': '__ferryImportMetaUrl' },
        }
      : { define: { 'import.meta.url': '__filename' } }),
  });
  const source = readFileSync(file, 'utf8');
  if (/\bimport\(/.test(source)) throw new Error(`${file} contains import(), which vm.Script cannot run: load that module another way`);
  v8.setFlagsFromString('--no-lazy');
  let script;
  try {
    script = new vm.Script(QUICK_WRAPPER[0] + source + QUICK_WRAPPER[1], { filename: path.resolve(file) });
  } finally {
    v8.setFlagsFromString('--lazy'); // back to the default, which is what the cache records and the launcher runs with
  }
  writeFileSync(`${file}.cache`, script.createCachedData());
}
await buildQuick('quick');
await buildQuick('quick-get', { fileUrl: true });
await buildQuick('quick-put', { fileUrl: true });

await build({ ...common, entryPoints: [path.join(out, 'src/io/digester-thread.js')], outfile: path.join(outdir, 'digester-thread.js'), format: 'cjs' });

writeFileSync(path.join(outdir, 'package.json'), '{ "type": "commonjs" }\n');
// The young-generation cap the bin applies to serve, put and get (see the file).
copyFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'young-generation.cjs'), path.join(outdir, 'young-generation.js'));
// The thread pool's width the bin gives a local durable server (see the file).
copyFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'thread-pool.cjs'), path.join(outdir, 'thread-pool.js'));
// The launcher: nothing but node:fs before it knows the command line is more than --version,
// and for a plain `ls`, `stat`, or single-file `get` or `put`, nothing of the full CLI.
writeFileSync(
  path.join(outdir, 'main.js'),
  `#!/usr/bin/env node
'use strict';
// ferry's bin (written by scripts/bundle-cli.mjs): --version here; plain \`ls\` and \`stat\` in
// quick.js, a plain single-file \`get\` or \`put\` in quick-get.js or quick-put.js; everything
// else in main.mjs, the full CLI.
const args = process.argv.slice(2);
const QUICK = { ls: 'quick.js', stat: 'quick.js', get: 'quick-get.js', put: 'quick-put.js' };
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  const pkg = JSON.parse(require('node:fs').readFileSync(require('node:path').join(__dirname, '..', '..', '..', 'package.json'), 'utf8'));
  process.stdout.write(pkg.version + '\\n');
} else if (!(Object.hasOwn(QUICK, args[0] ?? '') && loadQuick(QUICK[args[0]]).run(args))) {
  // The young-generation cap is for long runs (a server, trees of files): one file's get or
  // put on the quick path stays well under it without (1 GiB get or put: peak RSS 52-57 MB).
  if (args[0] === 'serve' || args[0] === 'put' || args[0] === 'get') require('./young-generation.js').capYoungGeneration();
  // A local durable server syncs small files many at once (see the file): before anything uses the pool.
  if (args[0] === 'serve') require('./thread-pool.js').widenThreadPool(args.slice(1));
  import('./main.mjs');
}

/**
 * A quick file, compiled from the code cache beside it when that cache is no older than the
 * file (a hand-edited one is compiled from source; V8 itself rejects a cache from another Node).
 */
function loadQuick(name) {
  const fs = require('node:fs');
  const file = require('node:path').join(__dirname, name);
  const source = fs.readFileSync(file, 'utf8');
  const cacheFile = file + '.cache';
  const cacheTime = fs.statSync(cacheFile, { throwIfNoEntry: false })?.mtimeMs;
  const cachedData = cacheTime !== undefined && cacheTime >= fs.statSync(file).mtimeMs ? fs.readFileSync(cacheFile) : undefined;
  const script = new (require('node:vm').Script)(${JSON.stringify(QUICK_WRAPPER[0])} + source + ${JSON.stringify(QUICK_WRAPPER[1])}, { filename: file, cachedData });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, require, module, file, __dirname);
  return module.exports;
}
`,
);
// The bin must be executable for `npm install -g .` and npx.
chmodSync(path.join(outdir, 'main.js'), 0o755);
