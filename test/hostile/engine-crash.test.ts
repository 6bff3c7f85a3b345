import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from '../../src/index.js';
import { chunkHeader, encodeMessage, PROTOCOL_VERSION, type Message } from '../../src/protocol/index.js';
import { startServeProcess, type ServeProcess } from '../helpers/cli.js';
import { assertDigest, randomData, } from '../helpers/fixtures.js';
import { RawPeer } from '../helpers/raw-peer.js';

/**
 * Issue 9: nothing one connection does may reach the server process. The server runs as a
 * real `ferry serve` child, so a crash is its exit, not a failed assertion in this process.
 */

const WRITE_TOKEN = 'w'.repeat(24);
const READ_TOKEN = 'r'.repeat(24);
const hello = (): Buffer => encodeMessage({ type: 'HELLO', id: 0, version: PROTOCOL_VERSION, clientName: 'attacker', flags: 0 });
const auth = (id: number, token: string): Buffer => encodeMessage({ type: 'AUTH', id, token });
/** A frame header announcing a payload far over the 64 KiB cap: a protocol error. */
const MALFORMED_HEADER = Buffer.from('ffffffff12000000070000', 'hex');

/** Sends `bytes` in one write, then waits for the server to close or `ms` to pass. */
function sendAndWait(port: number, bytes: Buffer, ms = 3000): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(bytes));
    const timer = setTimeout(() => socket.destroy(), ms);
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function assertServing(server: ServeProcess, token?: string): Promise<void> {
  assert.equal(server.child.exitCode, null, `the server process exited:\n${server.output()}`);
  const client = await connect({ host: '127.0.0.1', port: server.port, token, timeoutMs: 5000 });
  try {
    const data = randomData(4096);
    const name = `alive/${Math.random().toString(36).slice(2)}`;
    assertDigest(await client.put(data, name), data);
    await client.remove(name);
  } finally {
    await client.close();
  }
}

/** A small seeded generator (mulberry32): the same seed gives the same sessions. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * One malformed session: a valid HELLO (and sometimes AUTH), then plausible requests with
 * random ids (0 and duplicates included), flags, sizes and bodies, some bytes flipped or cut,
 * sent in random pieces. Plausible frames reach deep into the session, where garbage would
 * only reach the decoder.
 */
function malformedSession(next: () => number, tokens: boolean): Buffer[] {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const id = (): number => pick([0, 1, 1, 2, 3, 0xffffffff, Math.floor(next() * 100)]);
  const name = (): string => pick(['a', 'a/b', 'x/y/z.bin', 'raw/1.file', '.ferry/tmp/x', 'A'.repeat(300), 'ok.txt']);
  const parts: Buffer[] = [hello()];
  if (tokens && next() < 0.7) parts.push(auth(id(), pick([WRITE_TOKEN, READ_TOKEN, 'wrong-token-wrong-token'])));
  const count = 1 + Math.floor(next() * 8);
  for (let i = 0; i < count; i++) {
    const kind = next();
    let message: Message;
    if (kind < 0.35) {
      const flags = pick([0, 1, 2, 4, 5, 6, 8, 0x10, 0x14, 0x16, 0x20, 0xff]);
      const size = pick([0, 1, 5, 100, 70_000, 2 ** 40]);
      message = { type: 'PUT', id: id(), name: name(), flags, size };
      parts.push(encodeMessage(message));
      const body = randomData(Math.min(size, Math.floor(next() * 200)));
      if (flags & 2) parts.push(chunkHeader(body.length), body, ...(next() < 0.5 ? [chunkHeader(0)] : []));
      else parts.push(body);
      if (next() < 0.6) parts.push(encodeMessage({ type: 'PUT_END', id: id(), digest: randomData(32) }));
    } else if (kind < 0.5) {
      message = { type: 'GET', id: id(), name: name(), offset: pick([0, 1, 2 ** 40]) };
      parts.push(encodeMessage(message));
    } else if (kind < 0.6) {
      parts.push(encodeMessage({ type: 'LIST', id: id(), prefix: pick(['', 'a', 'a/', '../']), flags: pick([0, 1, 2, 0x80]) }));
    } else if (kind < 0.7) {
      parts.push(encodeMessage({ type: 'DELETE', id: id(), name: name(), flags: pick([0, 1, 3]) }));
    } else if (kind < 0.8) {
      parts.push(encodeMessage({ type: 'PROBE_UPLOAD', id: id(), name: name(), size: pick([0, 5, 2 ** 50]) }));
    } else if (kind < 0.85) {
      parts.push(auth(id(), 'x'));
    } else if (kind < 0.9) {
      parts.push(hello());
    } else {
      parts.push(encodeMessage({ type: 'STAT', id: id(), name: name() }));
    }
  }
  let bytes = Buffer.concat(parts);
  // Corrupt: flip a few bytes, cut the end, or append a malformed header.
  const damage = next();
  if (damage < 0.3) {
    bytes = Buffer.from(bytes);
    for (let i = 0; i < 3; i++) bytes[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
  } else if (damage < 0.5) {
    bytes = bytes.subarray(0, Math.floor(next() * bytes.length));
  } else if (damage < 0.8) {
    bytes = Buffer.concat([bytes, MALFORMED_HEADER]);
  }
  // Random split points: one session may arrive as many segments.
  const pieces: Buffer[] = [];
  let at = 0;
  while (at < bytes.length) {
    const size = next() < 0.5 ? bytes.length - at : 1 + Math.floor(next() * 64);
    pieces.push(bytes.subarray(at, at + size));
    at += size;
  }
  return pieces;
}

/**
 * Attackers connect from 127.0.0.2 (still loopback): the AUTH throttle slows that address down,
 * as it should, and the health check from 127.0.0.1 shows that no one else is.
 */
const ATTACKER_ADDRESS = '127.0.0.2';

function runSession(port: number, pieces: Buffer[]): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress: ATTACKER_ADDRESS }, () => {
      for (const piece of pieces) socket.write(piece);
      // Half the sessions close at once, half wait for the server to act first.
      setTimeout(() => socket.destroy(), pieces.length % 2 === 0 ? 0 : 50);
    });
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
  });
}

async function fuzz(server: ServeProcess, seed: number, sessions: number, tokens: boolean): Promise<void> {
  const next = random(seed);
  const parallel = 25;
  let started = 0;
  const worker = async (): Promise<void> => {
    while (started < sessions) {
      started++;
      await runSession(server.port, malformedSession(next, tokens));
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

describe('a hostile connection never reaches the server process', () => {
  let work: string;
  let withTokens: ServeProcess;
  let open: ServeProcess;

  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'ferry-engine-'));
    const tokens = path.join(work, 'tokens');
    await fs.writeFile(tokens, `${WRITE_TOKEN} write\n${READ_TOKEN} read\n`, { mode: 0o600 });
    [withTokens, open] = await Promise.all([
      startServeProcess(['--root', path.join(work, 'a'), '--tokens', tokens, '--max-per-ip', '100']),
      startServeProcess(['--root', path.join(work, 'b'), '--max-per-ip', '100']),
    ]);
  });
  after(async () => {
    await Promise.all([withTokens.stop(), open.stop()]);
    await fs.rm(work, { recursive: true, force: true });
  });

  it('survives a refused AWAIT_READY put before login followed by a malformed header in one segment', async () => {
    const put = encodeMessage({ type: 'PUT', id: 1, name: 'x', flags: 4, size: 10 });
    await sendAndWait(withTokens.port, Buffer.concat([hello(), put, MALFORMED_HEADER]));
    await assertServing(withTokens, WRITE_TOKEN);
  });

  it('survives the same with a read-only token', async () => {
    const put = encodeMessage({ type: 'PUT', id: 2, name: 'x', flags: 4, size: 10 });
    const peer = await RawPeer.connect(withTokens.port);
    peer.write(auth(1, READ_TOKEN));
    await peer.waitFor((m) => m.type === 'OK' && m.id === 1);
    peer.write(Buffer.concat([put, MALFORMED_HEADER]));
    await peer.waitClosed();
    await assertServing(withTokens, WRITE_TOKEN);
  });

  it('stays up through 1,500 seeded malformed sessions with tokens', async () => {
    await fuzz(withTokens, 9001, 1500, true);
    await assertServing(withTokens, WRITE_TOKEN);
  });

  it('stays up through 1,500 seeded malformed sessions without tokens', async () => {
    await fuzz(open, 4242, 1500, false);
    await assertServing(open);
  });
});
