import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, FerryError } from '../../src/index.js';
import { HelloFlag, PutFlag } from '../../src/protocol/index.js';
import { startServeProcess } from '../helpers/cli.js';
import { assertDigest, eventually, randomData, startServer, tempDir, type TestServer } from '../helpers/fixtures.js';
import { RawPeer } from '../helpers/raw-peer.js';
import { s3Scratch, s3Skip, TEST_PART_SIZE } from '../helpers/s3.js';
import type { S3Location } from '../../src/storage/s3/location.js';

/** Sends `sent` bytes of an upload of `data` as `name`, then drops the connection. */
async function cutUpload(port: number, name: string, data: Buffer, sent: number): Promise<void> {
  // BLAKE3, as ferry clients agree: a kept partial continues in the algorithm it was started in.
  const peer = await RawPeer.connect(port, { flags: HelloFlag.BLAKE3 });
  peer.send({ type: 'PUT', id: 1, name, flags: PutFlag.AWAIT_READY, size: data.length });
  await peer.waitFor((m) => m.type === 'PUT_READY');
  peer.write(data.subarray(0, sent));
  await new Promise<void>((resolve) => peer.socket.end(resolve));
  await peer.waitClosed();
}

async function fails(work: Promise<unknown>): Promise<string> {
  try {
    await work;
    return 'ok';
  } catch (error) {
    return error instanceof FerryError ? error.code : String(error);
  }
}

describe('several servers on one bucket (S3 store)', { skip: s3Skip() }, () => {
  let location: S3Location;
  let cleanup: () => Promise<void>;
  const servers: TestServer[] = [];
  let local: string;

  before(async () => {
    const scratch = await s3Scratch();
    location = scratch.location;
    cleanup = scratch.cleanup;
    for (let i = 0; i < 3; i++) servers.push(await startServer({ s3: { ...location, partSize: TEST_PART_SIZE } }));
    local = await tempDir();
  });
  after(async () => {
    for (const server of servers) await server.stop();
    await cleanup?.();
    if (local) await fs.rm(local, { recursive: true, force: true });
  });

  const client = (i: number) => connect(servers[i]!.address);

  it('what one stores the others list and serve at once; a delete on one is seen by all', async () => {
    const data = randomData(200_000);
    const a = await client(0);
    const b = await client(1);
    const c = await client(2);
    try {
      assertDigest(await a.put(data, 'shared/one.bin'), data);
      const out = path.join(local, 'one.bin');
      assertDigest(await b.get('shared/one.bin', out), data);
      assert.ok((await fs.readFile(out)).equals(data));
      assert.deepEqual((await c.list('shared', { recursive: true })).map((e) => [e.name, e.size]), [['shared/one.bin', data.length]]);
      await b.remove('shared/one.bin');
      assert.equal(await fails(a.stat('shared/one.bin')), 'NOT_FOUND');
      assert.deepEqual(await c.list('shared', { recursive: true }), []);
    } finally {
      await Promise.all([a.close(), b.close(), c.close()]);
    }
  });

  for (const [label, size] of [
    ['small', 50_000],
    ['large (multipart)', 2 * TEST_PART_SIZE + 999],
  ] as const) {
    it(`of concurrent creators of one ${label} name on different servers exactly one wins`, async () => {
      const name = `race-${size}.bin`;
      const bodies = [0, 1, 2].map(() => randomData(size));
      const clients = await Promise.all([0, 1, 2].map(client));
      try {
        const outcomes = await Promise.all(clients.map((c, i) => fails(c.put(bodies[i]!, name))));
        assert.equal(outcomes.filter((o) => o === 'ok').length, 1, outcomes.join(', '));
        assert.equal(outcomes.filter((o) => o === 'EXISTS').length, 2, outcomes.join(', '));
        const winner = bodies[outcomes.indexOf('ok')]!;
        const out = path.join(local, name);
        await clients[0]!.get(name, out);
        assert.ok((await fs.readFile(out)).equals(winner));
      } finally {
        await Promise.all(clients.map((c) => c.close()));
      }
    });
  }

  it('resumes through one server an upload cut while talking to another', async () => {
    const data = randomData(3 * TEST_PART_SIZE + 4321);
    const file = path.join(local, 'resume.bin');
    await fs.writeFile(file, data);
    await cutUpload(servers[0]!.address.port, 'resume.bin', data, 2 * TEST_PART_SIZE + 1000);
    // Both whole parts are recorded (the second may finish after the cut).
    await eventually(() => servers[0]!.server.storage.partials.sizeOf('resume.bin', data.length) === 2 * TEST_PART_SIZE, 10_000, 'the partial to be kept');
    const b = await client(1);
    try {
      const result = await b.put(file, 'resume.bin');
      assert.equal(result.resumedFrom, 2 * TEST_PART_SIZE);
      assertDigest(result, data);
    } finally {
      await b.close();
    }
    const c = await client(2);
    try {
      const out = path.join(local, 'resume-out.bin');
      await c.get('resume.bin', out);
      assert.ok((await fs.readFile(out)).equals(data));
    } finally {
      await c.close();
    }
  });

  it('a server killed mid-upload leaves nothing visible; the others keep serving, and resume it', async () => {
    const root = await tempDir();
    const killed = await startServeProcess(['--root', root, '--store', `s3://${location.bucket}/${location.prefix}`, '--s3-endpoint', location.endpoint!]);
    const partSize = 8 * 1024 * 1024; // the CLI's default
    const data = randomData(2 * partSize + 5000);
    const peer = await RawPeer.connect(killed.port, { flags: HelloFlag.BLAKE3 });
    try {
      peer.send({ type: 'PUT', id: 1, name: 'killed.bin', flags: PutFlag.AWAIT_READY, size: data.length });
      await peer.waitFor((m) => m.type === 'PUT_READY');
      peer.write(data.subarray(0, partSize + 1000));
      // The first part is in the bucket once its record is: then the server dies.
      await eventually(async () => (await servers[0]!.server.storage.probeUpload('killed.bin', data.length, 'blake3')).offset > 0, 10_000, 'a part to be stored');
      killed.child.kill('SIGKILL');
      await new Promise((resolve) => killed.child.once('close', resolve));
    } finally {
      peer.socket.destroy();
      await fs.rm(root, { recursive: true, force: true });
    }
    const a = await client(0);
    try {
      assert.equal(await fails(a.stat('killed.bin')), 'NOT_FOUND');
      assert.ok(!(await a.list('', { recursive: true })).some((e) => e.name === 'killed.bin'));
      const other = randomData(1000);
      assertDigest(await a.put(other, 'after-kill.bin'), other);
      const file = path.join(local, 'killed.bin');
      await fs.writeFile(file, data);
      const result = await a.put(file, 'killed.bin');
      assert.equal(result.resumedFrom, partSize);
      assertDigest(result, data);
    } finally {
      await a.close();
    }
  });
});
