import type { ListeningAddress, PluginContext, ServerPlugin } from '../server/plugin.js';
import { FerryError } from '../errors.js';
import { formatAddress, listenError } from '../server/server.js';
import { HttpDoor, type HttpDoorOptions } from './door.js';

export type HttpPluginOptions = HttpDoorOptions;

/** The HTTP door as a server plug-in: same host, store, tokens, certificate and connection caps as the server. */
export function httpPlugin(options: HttpPluginOptions): ServerPlugin {
  let door: HttpDoor | undefined;
  return {
    name: 'http',
    async start(context: PluginContext): Promise<ListeningAddress> {
      door = new HttpDoor(context, options);
      try {
        return await door.listen(context.host);
      } catch (error) {
        const problem = error as NodeJS.ErrnoException;
        if (problem.code === 'EADDRINUSE') {
          throw new FerryError('LOCAL_IO', `${formatAddress({ host: context.host, port: options.port })} is already in use: stop the other server or pick another --http-port`, { cause: error });
        }
        if (problem.syscall === 'listen') throw listenError(problem, context.host, options.port);
        throw error;
      }
    },
    close: (graceMs) => door?.close(graceMs) ?? Promise.resolve(),
  };
}
