import { connectUploader, type FerryUploader } from '../client/uploader.js';
import { withConnection } from './download-session.js';
import type { ClientOptions } from './session.js';

/** withClient for a command that uploads one file (a plain `ferry put`): no batch code. */
export function withUploader<T>(options: ClientOptions, work: (client: FerryUploader) => Promise<T>): Promise<T> {
  return withConnection(options, connectUploader, work);
}
