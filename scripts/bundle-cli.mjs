// Bundles the compiled CLI (dist/src) into dist/bin/ so `ferry` starts by reading a few files
// instead of resolving ~40 modules: measured ~15% faster cold start (bench/RESULTS.md).
// Dynamic imports stay separate chunks, loaded only by the commands that need them.
//
// dist/bin/cli/ is a CommonJS folder (its own package.json): the bin, main.js, is a tiny
// CommonJS launcher that answers `ferry --version` itself — a CommonJS file starts ~10 ms
// (≈ 0.2× `node -e 0`) sooner than an ES module, and neither commander nor the client load —
// and otherwise imports main.mjs, the CLI as ES modules (*.mjs chunks). The digester thread,
// which src/io finds as ./digester-thread.js beside its chunk, is built as CommonJS.
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
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

await build({ ...common, entryPoints: [path.join(out, 'src/io/digester-thread.js')], outfile: path.join(outdir, 'digester-thread.js'), format: 'cjs' });

writeFileSync(path.join(outdir, 'package.json'), '{ "type": "commonjs" }\n');
// The launcher: nothing but node:fs before it knows the command line is more than --version.
writeFileSync(
  path.join(outdir, 'main.js'),
  `#!/usr/bin/env node
'use strict';
// ferry's bin (written by scripts/bundle-cli.mjs): --version here, everything else in main.mjs.
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  const pkg = JSON.parse(require('node:fs').readFileSync(require('node:path').join(__dirname, '..', '..', '..', 'package.json'), 'utf8'));
  process.stdout.write(pkg.version + '\\n');
} else {
  import('./main.mjs');
}
`,
);
// The bin must be executable for `npm install -g .` and npx.
chmodSync(path.join(outdir, 'main.js'), 0o755);
