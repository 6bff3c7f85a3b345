import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { largeChunkSends, sendFileRange } from '../../src/transport/file-body.js';
import { loadServerCredentials } from '../../src/transport/tls.js';
import { randomData, tempDir } from '../helpers/fixtures.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** A connected pair on 127.0.0.1 whose far end reads and drops everything as fast as it can. */
async function drainedSocket(): Promise<{ socket: net.Socket; close: () => void }> {
  const server = net.createServer((peer) => peer.on('data', () => undefined).on('error', () => undefined));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  return {
    socket,
    close: () => {
      socket.destroy();
      server.close();
    },
  };
}

/** The same over TLS (a self-signed certificate made in `dir`). */
async function drainedTlsSocket(dir: string): Promise<{ socket: net.Socket; close: () => void }> {
  const { cert, key } = await loadServerCredentials(dir);
  const server = tls.createServer({ cert, key }, (peer) => peer.on('data', () => undefined).on('error', () => undefined));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const socket = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false });
  await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
  return {
    socket,
    close: () => {
      socket.destroy();
      server.close();
    },
  };
}

describe('sending a file range', () => {
  let dir: string;
  let handle: fs.FileHandle;
  const data = randomData(24 * MiB);
  let mostLarge = 0;

  before(async () => {
    dir = await tempDir();
    await fs.writeFile(path.join(dir, 'file'), data);
    handle = await fs.open(path.join(dir, 'file'));
  });
  after(async () => {
    await handle.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** Sends the file; returns the largest chunk size seen. */
  async function send(abortAfter?: number, overTls = false): Promise<number> {
    const { socket, close } = overTls ? await drainedTlsSocket(dir) : await drainedSocket();
    let largest = 0;
    let sent = 0;
    try {
      await sendFileRange(socket, handle, 0, data.length, (chunk) => {
        largest = Math.max(largest, chunk.length);
        mostLarge = Math.max(mostLarge, largeChunkSends());
        sent += chunk.length;
        if (abortAfter !== undefined && sent >= abortAfter) throw new Error('given up');
        return undefined;
      });
    } catch (error) {
      if (abortAfter === undefined) throw error;
    } finally {
      close();
    }
    return largest;
  }

  it('a send to a prompt reader grows its chunks to 1 MiB', async () => {
    assert.equal(await send(), MiB);
  });

  it('over TLS too (whose socket reports every write done a turn late), a send to a prompt reader grows to 1 MiB', async () => {
    assert.equal(await send(undefined, true), MiB);
  });

  it('only eight sends at once use chunks over 256 KiB', async () => {
    mostLarge = 0;
    const largest = await Promise.all(Array.from({ length: 12 }, () => send()));
    assert.equal(mostLarge, 8, 'eight slots in use at the busiest moment, never more');
    assert.ok(largest.every((size) => size >= 256 * KiB));
    assert.equal(largeChunkSends(), 0, 'every slot given back');
  });

  it('slots come back from sends that failed, so later sends grow again', async () => {
    await Promise.all(Array.from({ length: 10 }, () => send(4 * MiB)));
    assert.equal(largeChunkSends(), 0);
    const sizes = await Promise.all(Array.from({ length: 8 }, () => send()));
    assert.deepEqual(sizes, Array(8).fill(MiB));
  });
});
