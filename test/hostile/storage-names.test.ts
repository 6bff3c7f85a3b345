import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WireErrorCode } from '../../src/index.js';
import type { Message } from '../../src/protocol/index.js';
import { assertHealthy, makeSentinel, startServer, treeOf, type Sentinel, type TestServer } from '../helpers/fixtures.js';
import { RawPeer } from '../helpers/raw-peer.js';

const errorCode = (m: Message | undefined): number | undefined => (m?.type === 'ERROR' ? m.code : undefined);

/** Names refused only after something was made, before issue #9: now refused touching nothing. */
describe('names the store cannot hold are refused before anything is made (issue #9)', () => {
  let server: TestServer;
  let sentinel: Sentinel;

  before(async () => {
    server = await startServer();
    sentinel = await makeSentinel();
  });
  after(async () => {
    await server.stop();
    await sentinel.cleanup();
  });

  it('PUT of a/a/a/… (2,048 components in 4,095 bytes), of a name too long under the root, and of .FERRY/x', async () => {
    const before = await treeOf(server.root);
    const peer = await RawPeer.connect(server.address.port);
    const names = [
      `${'a/'.repeat(2047)}a`,
      Array.from({ length: 16 }, (_, i) => String(i).padEnd(255, 'x')).join('/'),
      '.FERRY/x',
      '.Ferry',
    ];
    let id = 1;
    for (const name of names) {
      peer.send({ type: 'PUT', id, name, flags: 0, size: 1 });
      peer.write(Buffer.from('x'));
      peer.send({ type: 'PUT_END', id, digest: Buffer.alloc(32) });
      const reply = await peer.waitFor((m) => m.id === id);
      assert.equal(errorCode(reply), WireErrorCode.BAD_NAME, name.slice(0, 40));
      id++;
    }
    peer.destroy();
    assert.deepEqual(await treeOf(server.root), before, 'nothing was created, not even under .ferry/');
    await assertHealthy(server, sentinel);
  });
});
