import assert from 'node:assert/strict';
import { createWriteStream, promises as fs, WriteStream } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, type FerryClient } from '../../src/index.js';
import { randomData, startServer, tempDir, type TestServer } from '../helpers/fixtures.js';

const MiB = 1024 * 1024;

/** A file stream that notes which memory each chunk it is given lives in. */
function recordingStream(file: string): { stream: WriteStream; buffers: Set<ArrayBufferLike> } {
  const buffers = new Set<ArrayBufferLike>();
  const stream = createWriteStream(file);
  const write = stream.write.bind(stream) as (chunk: Buffer, callback: (error?: Error | null) => void) => boolean;
  Object.assign(stream, {
    write(chunk: Buffer, callback: (error?: Error | null) => void): boolean {
      buffers.add(chunk.buffer);
      return write(chunk, callback);
    },
  });
  return { stream, buffers };
}

describe('downloads into streams', () => {
  let server: TestServer;
  let client: FerryClient;
  let local: string;
  const data = randomData(48 * MiB);

  before(async () => {
    server = await startServer();
    client = await connect(server.address);
    local = await tempDir();
    await fs.writeFile(path.join(local, 'source'), data);
    await client.put(path.join(local, 'source'), 'big.bin');
  });
  after(async () => {
    await client.close();
    await server.stop();
    await fs.rm(local, { recursive: true, force: true });
  });

  it('a file stream gets the read buffers themselves, reused once written: memory does not grow with the size', async () => {
    const target = path.join(local, 'copy');
    const { stream, buffers } = recordingStream(target);
    await client.get('big.bin', stream);
    await new Promise<void>((resolve, reject) => stream.end((error?: Error | null) => (error ? reject(error) : resolve())));
    assert.ok((await fs.readFile(target)).equals(data), 'the bytes arrive intact although their buffers are reused');
    // 48 MiB through 1 MiB read slabs: a slab per MiB if none came back, a handful if they do.
    assert.ok(buffers.size <= 16, `the chunks lived in ${buffers.size} distinct buffers`);
  });
});
