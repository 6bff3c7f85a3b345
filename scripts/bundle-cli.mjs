// Bundles the compiled CLI (dist/src) into dist/bin/ so `ferry` starts by reading a few files
// instead of resolving ~40 modules: measured ~15% faster cold start (bench/RESULTS.md).
// Dynamic imports stay separate chunks, loaded only by the commands that need them.
import { chmodSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

// The compiled output to bundle: dist/ unless another folder is given (scripts/build.mjs builds beside dist/).
const out = process.argv[2] ?? 'dist';

await build({
  entryPoints: [path.join(out, 'src/cli/main.js'), path.join(out, 'src/io/digester-thread.js')],
  entryNames: '[name]',
  outdir: path.join(out, 'bin/cli'), // three levels deep, like dist/src/cli: main.js finds ../../../package.json
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // pino loads worker files by path, selfsigned pulls in node-forge, and the BLAKE3 binding
  // loads a native addon: leave them to node_modules.
  external: ['pino', 'selfsigned', '@napi-rs/blake-hash'],
  banner: { js: "import { createRequire as __ferryRequire } from 'node:module'; const require = __ferryRequire(import.meta.url);" },
  sourcemap: true,
  logLevel: 'warning',
});

// The bin must be executable for `npm install -g .` and npx.
chmodSync(path.join(out, 'bin/cli/main.js'), 0o755);
