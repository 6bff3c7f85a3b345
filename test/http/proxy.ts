import net from 'node:net';

export interface CuttingProxy {
  port: number;
  /** How many connections were cut. */
  cuts(): number;
  close(): Promise<void>;
}

/**
 * A TCP proxy to `port` on 127.0.0.1 that cuts (both ways, at once) the first connection
 * carrying a tus PATCH once `cutAfter` bytes of it went upstream: a dropped connection mid-upload.
 */
export async function cuttingProxy(port: number, cutAfter: number): Promise<CuttingProxy> {
  let cuts = 0;
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    let sent = 0;
    let patching = false;
    client.on('data', (chunk: Buffer) => {
      if (!patching && cuts === 0 && chunk.includes('PATCH ')) patching = true;
      if (patching) sent += chunk.length;
      if (patching && cuts === 0 && sent > cutAfter) {
        cuts++;
        client.destroy();
        upstream.destroy();
        return;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    port: (proxy.address() as net.AddressInfo).port,
    cuts: () => cuts,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    },
  };
}
