import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, WireErrorCode, type FerryError, type TransferResult } from '../../src/index.js';
import { encodeMessage } from '../../src/protocol/index.js';
import { startFakeServer, type FakeServer } from '../helpers/fake-server.js';
import { assertDigest, eventually, randomData, sha256, sha256File, startServer, tempDir, type TestServer } from '../helpers/fixtures.js';

/**
 * Issue #10: two downloads to one local path. One wins, the other fails at once with a clear
 * local error; the file on disk is always exactly the one reported. The claim is the lock file
 * `<path>.ferry-lock` (pid, host, nonce), which works across processes; a lock whose process
 * died is stale and taken over. The final step never replaces a file another program wrote
 * meanwhile.
 */

const MiB = 1024 * 1024;
const LIB = new URL('../../src/client/index.js', import.meta.url).href;
const CHILD = `
const { connect } = await import(process.env.FERRY_LIB);
const [port, name, target] = JSON.parse(process.env.FERRY_ARGS);
const client = await connect({ host: '127.0.0.1', port, timeoutMs: 10000 });
try {
  const result = await client.get(name, target);
  console.log(JSON.stringify({ digest: result.digest, algorithm: result.algorithm }));
} catch (error) {
  console.log(JSON.stringify({ code: error.code, message: error.message }));
} finally {
  await client.close();
}
`;

/**
 * A fake server serving `files`; the first GET of a name in `held` sends half the body, then
 * the rest once the test calls `release(name)`. HASH_PREFIX is answered honestly (resumes work).
 */
async function fileServer(files: Record<string, Buffer>, held: string[] = []): Promise<FakeServer & { release(name: string): void }> {
  const gates = new Map<string, { used: boolean; open: () => void; opened: Promise<void> }>();
  for (const name of held) {
    let open: () => void = () => undefined;
    const opened = new Promise<void>((resolve) => (open = resolve));
    gates.set(name, { used: false, open, opened });
  }
  const fake = await startFakeServer((m, socket) => {
    const data = 'name' in m ? files[m.name] : undefined;
    if (data === undefined) return void socket.write(encodeMessage({ type: 'ERROR', id: m.id, code: WireErrorCode.NOT_FOUND, message: 'no' }));
    if (m.type === 'HASH_PREFIX') {
      const offset = Math.min(m.length, data.length);
      socket.write(encodeMessage({ type: 'PARTIAL', id: m.id, offset, digest: createHash('sha256').update(data.subarray(0, offset)).digest() }));
    } else if (m.type === 'GET') {
      socket.write(encodeMessage({ type: 'GET_OK', id: m.id, size: data.length, offset: m.offset, mtimeMs: 0, digest: Buffer.from(sha256(data), 'hex') }));
      const body = data.subarray(m.offset);
      const gate = gates.get(m.name);
      if (!gate || gate.used) return void socket.write(body);
      gate.used = true;
      const middle = Math.floor(body.length / 2);
      socket.write(body.subarray(0, middle));
      void gate.opened.then(() => socket.write(body.subarray(middle)));
    }
  });
  return Object.assign(fake, { release: (name: string) => gates.get(name)?.open() });
}

describe('two downloads to one path', () => {
  let dir: string;
  let server: TestServer;
  let scriptFile: string;
  const a = randomData(3 * MiB);
  const b = randomData(3 * MiB);
  before(async () => {
    dir = await tempDir();
    scriptFile = path.join(dir, 'get.mjs');
    await fs.writeFile(scriptFile, CHILD);
    server = await startServer();
    const client = await connect(server.address);
    await client.put(a, 'a/x');
    await client.put(b, 'b/x');
    await client.close();
  });
  after(async () => {
    await server.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** Exactly one download won; the file holds what it reported; nothing of the claim is left. */
  async function assertOneWinner(target: string, outcomes: PromiseSettledResult<TransferResult>[], who: RegExp): Promise<void> {
    const won = outcomes.filter((o): o is PromiseFulfilledResult<TransferResult> => o.status === 'fulfilled');
    const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    assert.equal(won.length, 1, `one download wins (${won.length} did)`);
    const error = lost[0]!.reason as FerryError;
    assert.equal(error.code, 'LOCAL_IO');
    assert.match(error.message, new RegExp(`another download to ${target.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is in progress \\(${who.source}\\)`));
    assertDigest(won[0]!.value, await fs.readFile(target), 'the file on disk is the one reported');
    assert.deepEqual((await fs.readdir(path.dirname(target))).filter((f) => f.startsWith(path.basename(target))), [path.basename(target)]);
  }

  it('in one process, on one connection: one wins, the other fails at once', async () => {
    const target = path.join(dir, 'one-connection', 'x');
    await fs.mkdir(path.dirname(target));
    const client = await connect(server.address);
    try {
      await assertOneWinner(target, await Promise.allSettled([client.get('a/x', target), client.get('b/x', target)]), /in this process/);
    } finally {
      await client.close();
    }
  });

  it('in one process, on two connections', async () => {
    const target = path.join(dir, 'two-connections', 'x');
    await fs.mkdir(path.dirname(target));
    const [first, second] = await Promise.all([connect(server.address), connect(server.address)]);
    try {
      await assertOneWinner(target, await Promise.allSettled([first.get('a/x', target), second.get('b/x', target)]), /in this process/);
    } finally {
      await first.close();
      await second.close();
    }
  });

  function runChild(port: number, name: string, target: string): { pid: number; done: Promise<{ digest?: string; algorithm?: 'sha256' | 'blake3'; code?: string; message?: string }> } {
    const child = spawn(process.execPath, [scriptFile], {
      env: { ...process.env, FERRY_LIB: LIB, FERRY_ARGS: JSON.stringify([port, name, target]) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const done = new Promise<{ digest?: string; algorithm?: 'sha256' | 'blake3'; code?: string; message?: string }>((resolve) =>
      child.on('close', () => {
        clearTimeout(killer);
        resolve(out.trim() === '' ? { code: 'NO OUTPUT' } : (JSON.parse(out) as { digest?: string }));
      }),
    );
    return { pid: child.pid!, done };
  }

  it('in two processes: the second fails while the first holds the path, the first completes', async () => {
    const target = path.join(dir, 'two-processes', 'x');
    await fs.mkdir(path.dirname(target));
    const fake = await fileServer({ 'a/x': a, 'b/x': b }, ['a/x']);
    try {
      const first = runChild(fake.port, 'a/x', target);
      await eventually(async () => (await fs.stat(`${target}.ferry-part`).catch(() => undefined))?.size === 1.5 * MiB, 10_000, 'the first download to be half done');
      const second = await runChild(fake.port, 'b/x', target).done;
      assert.equal(second.code, 'LOCAL_IO');
      assert.match(second.message!, new RegExp(`in progress \\(by process ${first.pid}\\)`));
      fake.release('a/x');
      const winner = await first.done;
      assertDigest(winner as { digest: string; algorithm: 'sha256' | 'blake3' }, a);
      assert.equal(await sha256File(target), sha256(a));
      assert.deepEqual(await fs.readdir(path.dirname(target)), ['x']);
    } finally {
      await fake.close();
    }
  });

  it('takes over a lock whose process is gone; refuses one whose process is alive', async () => {
    const target = path.join(dir, 'stale', 'x');
    await fs.mkdir(path.dirname(target));
    const dead = spawn(process.execPath, ['-e', '']);
    const deadPid = dead.pid!;
    await new Promise((resolve) => dead.on('close', resolve));
    await fs.writeFile(`${target}.ferry-lock`, `${deadPid} ${os.hostname()} 0123\n`);
    const client = await connect(server.address);
    try {
      assertDigest(await client.get('a/x', target), a);
      await assert.rejects(fs.stat(`${target}.ferry-lock`), { code: 'ENOENT' });

      const alive = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)']);
      try {
        await fs.writeFile(`${target}.ferry-lock`, `${alive.pid} ${os.hostname()} 4567\n`);
        await assert.rejects(client.get('b/x', target), (e: FerryError) => e.code === 'LOCAL_IO' && e.message.includes(`by process ${alive.pid}`));
        assert.equal(await sha256File(target), sha256(a), 'the file is untouched');
        assert.equal(await fs.readFile(`${target}.ferry-lock`, 'utf8'), `${alive.pid} ${os.hostname()} 4567\n`, 'the live lock is left alone');
      } finally {
        alive.kill();
        await fs.rm(`${target}.ferry-lock`, { force: true });
      }
    } finally {
      await client.close();
    }
  });

  for (const existed of [false, true]) {
    it(`never replaces a file another program ${existed ? 'rewrote' : 'created'} during the download; running again does`, async () => {
      const target = path.join(dir, `meanwhile-${existed}`, 'x');
      await fs.mkdir(path.dirname(target));
      if (existed) await fs.writeFile(target, 'old');
      const fake = await fileServer({ 'a/x': a }, ['a/x']);
      const client = await connect({ host: '127.0.0.1', port: fake.port });
      try {
        const call = client.get('a/x', target);
        await eventually(async () => (await fs.stat(`${target}.ferry-part`).catch(() => undefined))?.size === 1.5 * MiB, 10_000, 'half the download');
        await fs.writeFile(`${target}.tmp`, 'written by someone else');
        await fs.rename(`${target}.tmp`, target);
        fake.release('a/x');
        await assert.rejects(call, (e: FerryError) => e.code === 'LOCAL_IO' && new RegExp(`${existed ? 'changed' : 'appeared'} during the download.*run the command again`).test(e.message));
        assert.equal(await fs.readFile(target, 'utf8'), 'written by someone else');
        assert.equal((await fs.stat(`${target}.ferry-part`)).size, a.length, 'the verified download is kept');
        const again = await client.get('a/x', target);
        assert.equal(again.resumedFrom, a.length);
        assert.equal(await sha256File(target), sha256(a));
        assert.deepEqual(await fs.readdir(path.dirname(target)), ['x']);
      } finally {
        client.destroy();
        await fake.close();
      }
    });
  }
});
