import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { StoreBackend } from '../storage/backend.js';
import type { ConnectionLimiter } from '../transport/limits.js';
import type { ServerEvents } from './events.js';

export interface ListeningAddress {
  host: string;
  port: number;
}

/** What a plug-in gets from the server it runs beside: the same store, log and connection caps. */
export interface PluginContext {
  host: string;
  store: StoreBackend;
  log: Logger;
  limiter: ConnectionLimiter;
  /** The server's clock: plug-ins arm their deadlines on it too. */
  clock: Clock;
  /** What happens on the protocol port (connections, requests, auth failures), for observers. */
  events: ServerEvents;
}

/**
 * A listener that runs beside the ferry protocol port and shares its store and limits (the raw
 * ingest port today; the HTTP door and metrics later). Plug-ins live above the server: the
 * server knows only this interface, never a plug-in's module.
 */
export interface ServerPlugin {
  /** Short stable name, used in logs and by `FerryServer.pluginAddress`. */
  readonly name: string;
  /** Starts listening; rejects with the system error (EADDRINUSE, …) as is. */
  start(context: PluginContext): Promise<ListeningAddress>;
  /** Stops accepting, lets work in flight finish for up to `graceMs`, then ends it. Idempotent. */
  close(graceMs: number): Promise<void>;
}
