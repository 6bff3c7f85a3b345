import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';

/**
 * The bin's loading structure (issue 12: `ferry --version` starts as fast as `node -e 0`):
 * `--version` is answered by the CommonJS launcher before the ES module loader, commander
 * (child_process) or the client (tls, crypto) load. (net loads for stdout when it is a pipe.) Timing itself is measured by `npm run bench`.
 */
describe('CLI start-up', () => {
  it('answers --version and -V without loading ES modules, commander or the client', async () => {
    const dir = await tempDir('ferry-startup-');
    try {
      const hook = path.join(dir, 'report-loaded.cjs');
      await fs.writeFile(
        hook,
        "process.on('exit', () => require('node:fs').writeSync(2, 'LOADED ' + JSON.stringify(process.moduleLoadList.filter((m) => /esm\\/loader|NativeModule (tls|crypto|child_process)$/.test(m))) + '\\n'));\n",
      );
      const pkg = JSON.parse(await fs.readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
      for (const flag of ['--version', '-V']) {
        const result = await runCli([flag], { env: { NODE_OPTIONS: `--require ${hook}` } });
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stdout, `${pkg.version}\n`);
        assert.match(result.stderr, /^LOADED \[\]$/m, `${flag} loaded more than the launcher: ${result.stderr}`);
      }
      // anything else goes to the full CLI, which still knows --version
      const help = await runCli(['--version', '--help'], { env: { NODE_OPTIONS: `--require ${hook}` } });
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stderr, /esm\/loader/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
