// The client's socket-reading path alone (issue 11): one process, loopback, no hashing, no disk.
// A server writes GET_OK and a 1 GiB body from one reused 1 MiB buffer; the client decodes it
// with the protocol Decoder, reading either with 'data' events (a fresh 64 KiB buffer per read,
// as before), through SlabReader (`onread` into 1 MiB slabs, as the client does now), or with
// `onread` into one fixed 1 MiB buffer (the ceiling: unsafe when a sink keeps slices).
//   node dist/bench/receive-path.js data|slab|fixed [MiB]
// Prints MB/s; time whole runs from outside to compare CPU (the server half is the same in both).
import net from 'node:net';
import { SlabReader } from '../src/transport/read-slab.js';
import { Decoder, encodeMessage } from '../src/protocol/index.js';

const MiB = 1024 * 1024;
const mode = process.argv[2];
const total = Number(process.argv[3] ?? 1024) * MiB;
if (mode !== 'data' && mode !== 'slab' && mode !== 'fixed') throw new Error('usage: receive-path.js data|slab|fixed [MiB]');

const block = Buffer.alloc(MiB, 0x5a);
const server = net.createServer((socket) => {
  socket.write(encodeMessage({ type: 'GET_OK', id: 1, size: total, offset: 0, mtimeMs: 0, digest: Buffer.alloc(32) }));
  let sent = 0;
  const pump = (): void => {
    while (sent < total) {
      sent += block.length;
      if (!socket.write(block)) return void socket.once('drain', pump);
    }
    socket.end();
  };
  pump();
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as net.AddressInfo;
  let bodyBytes = 0;
  let kept = false;
  const started = process.hrtime.bigint();
  const decoder = new Decoder('client', {
    message: () => undefined, // GET_OK: the decoder starts the body itself
    body: (_id, data) => {
      kept = true; // a real sink queues the slice
      bodyBytes += data.length;
    },
    bodyEnd: () => undefined,
  });
  const receive = (chunk: Buffer): boolean => {
    kept = false;
    decoder.push(chunk);
    return kept || decoder.buffered > 0;
  };
  const reader = new SlabReader();
  const fixed = Buffer.alloc(MiB);
  const onread =
    mode === 'slab'
      ? reader.onread
      : mode === 'fixed'
        ? { buffer: fixed, callback: (count: number): boolean => receive(fixed.subarray(0, count)) || true }
        : undefined;
  const socket = net.connect({ port, host: '127.0.0.1', onread });
  if (mode === 'slab') reader.attach(receive);
  else if (mode === 'data') socket.on('data', receive);
  socket.on('close', () => {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    console.log(`${mode}: ${bodyBytes} body bytes in ${seconds.toFixed(3)} s, ${(bodyBytes / seconds / 1e6).toFixed(0)} MB/s`);
    server.close();
  });
});
