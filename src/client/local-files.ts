import { promises as fs } from 'node:fs';
import { FerryError } from '../errors.js';
import { errorText } from './requests.js';

/** Opens a local regular file for upload; its size is taken from the open file, once. */
export async function openLocal(file: string): Promise<{ handle: fs.FileHandle; size: number }> {
  try {
    const handle = await fs.open(file, 'r');
    const stats = await handle.stat();
    if (!stats.isFile()) {
      await handle.close();
      throw new FerryError('LOCAL_IO', `${file} is not a regular file`);
    }
    return { handle, size: stats.size };
  } catch (error) {
    if (error instanceof FerryError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new FerryError('LOCAL_IO', `no such local file: ${file}`, { cause: error });
    if (code === 'EACCES') throw new FerryError('LOCAL_IO', `no permission to read ${file}`, { cause: error });
    if (code === 'EISDIR') throw new FerryError('LOCAL_IO', `${file} is a folder (use -r)`, { cause: error });
    throw new FerryError('LOCAL_IO', `cannot open ${file}: ${errorText(error)}`, { cause: error });
  }
}
