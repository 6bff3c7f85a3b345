import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

/**
 * The layout shows the architecture: each layer imports only from layers below it, and
 * folders of one layer (server and client; io and transport) never import each other.
 */

const SRC = fileURLToPath(new URL('../../src/', import.meta.url)).replace(`${path.sep}dist${path.sep}`, path.sep);

/** Layer of a source file, by its path under src/ (lower layers know nothing of higher ones). */
function layerOf(file: string): { layer: number; unit: string } {
  const [top] = file.split('/');
  const table: Record<string, number> = {
    'errors.ts': -1,
    'clock.ts': -1,
    'builtins.ts': -1,
    protocol: 0,
    io: 1,
    transport: 1,
    storage: 2,
    server: 3,
    client: 3,
    services: 4,
    http: 4,
    'create-server.ts': 5,
    'index.ts': 6,
    cli: 7,
  };
  const layer = table[top!];
  assert.ok(layer !== undefined, `src/${file} is in no layer: add its folder to test/architecture.test.ts`);
  return { layer, unit: top! };
}

function sources(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(path.join(dir, entry.name), `${prefix}${entry.name}/`) : entry.name.endsWith('.ts') ? [`${prefix}${entry.name}`] : [],
  );
}

describe('architecture', () => {
  it('every import points to a lower layer or within its own folder', () => {
    const problems: string[] = [];
    for (const file of sources(SRC)) {
      const from = layerOf(file);
      const text = readFileSync(path.join(SRC, file), 'utf8');
      for (const match of text.matchAll(/(?:import|export)[^'"]*?from\s+'(\.{1,2}\/[^']+)'/g)) {
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), match[1]!)).replace(/\.js$/, '.ts');
        const to = layerOf(target);
        if (to.unit === from.unit) continue;
        if (to.layer >= from.layer) problems.push(`src/${file} imports src/${target} (layer ${to.layer} from layer ${from.layer})`);
      }
    }
    assert.deepEqual(problems, []);
  });
});
