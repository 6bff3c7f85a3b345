import { connect, type FerryClient } from '../index.js';
import { resolveServer } from './address.js';

export interface ClientOptions {
  server?: string;
  timeout?: string;
}

/** Opens a client to the server named by --server / FERRY_SERVER, runs `work`, closes. */
export async function withClient<T>(options: ClientOptions, work: (client: FerryClient) => Promise<T>): Promise<T> {
  const { host, port } = resolveServer(options.server);
  const client = await connect({ host, port, clientName: 'ferry-cli', timeoutMs: timeoutMs(options.timeout) });
  try {
    return await work(client);
  } finally {
    await client.close();
  }
}

export function timeoutMs(text: string | undefined): number {
  const seconds = text === undefined ? 30 : Number(text);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 30_000;
}
