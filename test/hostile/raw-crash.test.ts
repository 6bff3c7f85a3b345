import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { startServeProcess } from '../helpers/cli.js';
import { randomData, sha256, sha256File, tempDir, temporaries, visibleTree } from '../helpers/fixtures.js';

/**
 * Issue #9: a raw upload's acknowledgement is the server's clean close (FIN, no reset). A real
 * `ferry serve --raw-port` is SIGKILLed while hundreds of raw uploads are in flight; after a
 * restart on the same root, every upload that was acknowledged must be stored with exactly its
 * bytes, nothing partial may be visible, and numbering must continue above every number used.
 */

type Outcome = 'acknowledged' | 'reset' | 'refused';

/** One raw upload: bytes, FIN, then how the server answered. */
function rawUpload(port: number, data: Buffer): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    let connected = false;
    let failed = false;
    let gotFin = false;
    socket.once('connect', () => (connected = true));
    socket.on('error', () => (failed = true));
    socket.on('end', () => {
      gotFin = true;
      socket.end();
    });
    socket.on('close', () => resolve(!connected ? 'refused' : gotFin && !failed ? 'acknowledged' : 'reset'));
    socket.setTimeout(20_000, () => socket.destroy(new Error('no answer')));
    socket.resume();
    socket.end(data);
  });
}

const rawNumber = (name: string): number => Number(/^raw\/(\d+)\.file$/.exec(name)?.[1] ?? NaN);

describe('raw ingest across a server crash (issue #9)', { timeout: 120_000 }, () => {
  it('SIGKILL mid-burst: every clean close is a stored file, nothing partial, numbers never reused', async () => {
    const root = await tempDir('ferry-raw-crash-');
    try {
      const uploads = 320;
      const inFlight = 40; // under the default 50 connections per address
      const killAfterAcks = 120;
      const datas = Array.from({ length: uploads }, (_, i) => randomData(1 + ((i * 7919) % 120_000)));
      const outcomes: Outcome[] = [];
      const serve = await startServeProcess(['--root', root, '--raw-port', '0']);
      let acks = 0;
      let killing: Promise<unknown> | undefined;
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < uploads) {
          const i = next++;
          const outcome = await rawUpload(serve.rawPort!, datas[i]!);
          outcomes[i] = outcome;
          if (outcome === 'acknowledged' && ++acks === killAfterAcks) killing = serve.stop('SIGKILL');
        }
      };
      await Promise.all(Array.from({ length: inFlight }, worker));
      await killing;
      assert.ok(killing, 'the server was killed mid-way');
      const acknowledged = outcomes.flatMap((o, i) => (o === 'acknowledged' ? [i] : []));
      const failed = outcomes.filter((o) => o !== 'acknowledged').length;
      assert.ok(failed > 0, 'some uploads were cut off by the kill');
      const counterAtCrash = Number(await fs.readFile(path.join(root, '.ferry', 'raw-ingest-next'), 'utf8'));

      const again = await startServeProcess(['--root', root, '--raw-port', '0']);
      try {
        const visible = (await visibleTree(root)).filter((p) => !p.endsWith('/'));
        const stored = new Map<string, string>(); // sha256 → name
        for (const name of visible) {
          assert.match(name, /^raw\/\d+\.file$/, `${name} is a raw upload`);
          stored.set(await sha256File(path.join(root, name)), name);
        }
        const sent = new Set(datas.map(sha256));
        for (const digest of stored.keys()) assert.ok(sent.has(digest), `${stored.get(digest)} holds one whole upload, not a part`);
        const lost = acknowledged.filter((i) => !stored.has(sha256(datas[i]!)));
        assert.deepEqual(lost, [], `${lost.length} of ${acknowledged.length} acknowledged uploads are missing`);
        assert.deepEqual(await temporaries(root), [], 'temporaries are swept at start');

        // Numbering continues above every number handed out before the crash.
        const highest = Math.max(0, ...visible.map(rawNumber));
        assert.ok(counterAtCrash > highest);
        for (let i = 0; i < 3; i++) assert.equal(await rawUpload(again.rawPort!, Buffer.from(`after the crash ${i}`)), 'acknowledged');
        const fresh = (await visibleTree(root)).filter((n) => /^raw\/\d+\.file$/.test(n) && !visible.includes(n)).map(rawNumber);
        assert.equal(fresh.length, 3);
        for (const n of fresh) assert.ok(n >= counterAtCrash, `raw/${n}.file reuses no number below ${counterAtCrash}`);
      } finally {
        await again.stop();
      }
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });
});
