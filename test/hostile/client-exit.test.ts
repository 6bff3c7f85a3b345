import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WireErrorCode } from '../../src/index.js';
import { encodeMessage } from '../../src/protocol/index.js';
import { startFakeServer, type FakeServer } from '../helpers/fake-server.js';
import { startServer, tempDir } from '../helpers/fixtures.js';

/**
 * Issue #9/#10, as a user sees it: a process that uses the built library (dist/) and meets a
 * failure exits by itself, promptly, without calling process.exit. Before the fix each of
 * these printed its error and then ran on (a hashing worker, a stdin being read).
 */

const LIB = new URL('../../src/client/index.js', import.meta.url).href;
const MiB = 1024 * 1024;
const SHA = Buffer.alloc(32, 7);
/** The child's own timeout; it must be gone well within EXIT_BOUND of real time. */
const CHILD_TIMEOUT_MS = 500;
const EXIT_BOUND_MS = 8000;

// The child mirrors the CLI: connect, one call, close in a finally, print the outcome, return.
const SCRIPT = `
const { connect } = await import(process.env.FERRY_LIB);
const s = JSON.parse(process.env.FERRY_SCENARIO);
let client;
try {
  client = await connect({ host: '127.0.0.1', port: s.port, timeoutMs: ${CHILD_TIMEOUT_MS} });
  if (s.op === 'get') await client.get(s.name, s.target);
  else await client.put(s.source === '-' ? process.stdin : s.source, s.name);
  console.log('ok');
} catch (error) {
  console.log(error.code ?? String(error));
} finally {
  await client?.close();
}
`;

interface Outcome {
  code: number | null;
  stdout: string;
  ms: number;
}

/** The script as a file: under `node -e` a worker thread inherits flags that make it fail to start. */
let scriptFile = '';

function runChild(scenario: object, stdin?: Buffer): Promise<Outcome> {
  const started = Date.now();
  const child = spawn(process.execPath, [scriptFile], {
    env: { ...process.env, FERRY_LIB: LIB, FERRY_SCENARIO: JSON.stringify(scenario), FERRY_INLINE_HASH: '' },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stdin.on('error', () => undefined);
  if (stdin) child.stdin.write(stdin); // and left open, like a terminal
  const killer = setTimeout(() => child.kill('SIGKILL'), EXIT_BOUND_MS);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(killer);
      child.stdin.destroy();
      resolve({ code, stdout: stdout.trim(), ms: Date.now() - started });
    }),
  );
}

function assertExited(outcome: Outcome, expected: string): void {
  assert.equal(outcome.code, 0, `the child did not exit by itself within ${EXIT_BOUND_MS} ms (printed ${JSON.stringify(outcome.stdout)})`);
  assert.equal(outcome.stdout, expected);
}

describe('a process using the library exits by itself after a failure', () => {
  let dir: string;
  let bigFile: string;
  const fakes: FakeServer[] = [];
  before(async () => {
    dir = await tempDir();
    bigFile = path.join(dir, 'big.bin');
    await fs.writeFile(bigFile, Buffer.alloc(24 * MiB, 1));
    scriptFile = path.join(dir, 'child.mjs');
    await fs.writeFile(scriptFile, SCRIPT);
  });
  after(async () => {
    for (const fake of fakes) await fake.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** A fake server whose GET announces 16 MiB, sends 1 MiB, then stalls or dies. */
  async function bigGet(then: 'stall' | 'die'): Promise<FakeServer> {
    const fake = await startFakeServer((m, socket) => {
      if (m.type !== 'GET') return void socket.write(encodeMessage({ type: 'ERROR', id: m.id, code: WireErrorCode.NOT_FOUND, message: 'no' }));
      socket.write(encodeMessage({ type: 'GET_OK', id: m.id, size: 16 * MiB, offset: 0, mtimeMs: 0, digest: SHA }));
      socket.write(Buffer.alloc(MiB), () => then === 'die' && socket.destroy());
    });
    fakes.push(fake);
    return fake;
  }

  it('a get of 16 MiB whose server stalls after GET_OK', async () => {
    const fake = await bigGet('stall');
    assertExited(await runChild({ op: 'get', port: fake.port, name: 'big', target: path.join(dir, 'stall') }), 'TIMEOUT');
  });

  it('a get of 16 MiB whose server dies mid-body', async () => {
    const fake = await bigGet('die');
    assertExited(await runChild({ op: 'get', port: fake.port, name: 'big', target: path.join(dir, 'die') }), 'CLOSED');
  });

  it('a put of a 24 MiB file whose server dies mid-body', async () => {
    let received = 0;
    const fake = await startFakeServer(
      (m, socket, peer) => {
        if (m.type === 'PUT') {
          socket.write(encodeMessage({ type: 'PUT_READY', id: m.id, offset: 0, prefixDigest: SHA }));
          peer.expectBody(m.id, m.size);
        } else socket.write(encodeMessage({ type: 'PARTIAL', id: m.id, offset: 0, digest: SHA }));
      },
      { onBody: (_id, data, socket) => (received += data.length) > 2 * MiB && socket.destroy() },
    );
    fakes.push(fake);
    assertExited(await runChild({ op: 'put', port: fake.port, name: 'big', source: bigFile }), 'CLOSED');
  });

  it('a put of a 24 MiB file whose server stops reading', async () => {
    const fake = await startFakeServer((m, socket, peer) => {
      if (m.type === 'PUT') {
        socket.write(encodeMessage({ type: 'PUT_READY', id: m.id, offset: 0, prefixDigest: SHA }));
        peer.expectBody(m.id, m.size);
        socket.pause();
      } else socket.write(encodeMessage({ type: 'PARTIAL', id: m.id, offset: 0, digest: SHA }));
    });
    fakes.push(fake);
    assertExited(await runChild({ op: 'put', port: fake.port, name: 'big', source: bigFile }), 'TIMEOUT');
  });

  it('a stdin upload refused as over the real server\'s maximum file size, stdin left open', async () => {
    const server = await startServer({ maxFileSize: MiB });
    try {
      const outcome = await runChild({ op: 'put', port: server.address.port, name: 'piped.bin', source: '-' }, Buffer.alloc(2 * MiB, 5));
      assertExited(outcome, 'TOO_LARGE');
    } finally {
      await server.stop();
    }
  });

  it('a connect refused during the handshake by a server that keeps the socket open', async () => {
    const fake = await startFakeServer(() => undefined, {
      onHello: (socket) => socket.write(encodeMessage({ type: 'ERROR', id: 0, code: WireErrorCode.VERSION, message: 'no such version' })),
    });
    fakes.push(fake);
    assertExited(await runChild({ op: 'get', port: fake.port, name: 'x', target: path.join(dir, 'never') }), 'VERSION');
  });
});
