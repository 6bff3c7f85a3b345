// Bundles the compiled CLI (dist/src) into dist/bin/ so `ferry` starts by reading a few files
// instead of resolving ~40 modules: measured ~15% faster cold start (bench/RESULTS.md).
// Dynamic imports stay separate chunks, loaded only by the commands that need them.
import { build } from 'esbuild';

await build({
  entryPoints: ['dist/src/cli/main.js', 'dist/src/io/digester-thread.js'],
  entryNames: '[name]',
  outdir: 'dist/bin/cli', // three levels deep, like dist/src/cli: main.js finds ../../../package.json
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // pino loads worker files by path and selfsigned pulls in node-forge: leave both to node_modules.
  external: ['pino', 'selfsigned'],
  banner: { js: "import { createRequire as __ferryRequire } from 'node:module'; const require = __ferryRequire(import.meta.url);" },
  sourcemap: true,
  logLevel: 'warning',
});

// The bin must be executable for `npm install -g .` and npx.
const { chmodSync } = await import('node:fs');
chmodSync('dist/bin/cli/main.js', 0o755);
