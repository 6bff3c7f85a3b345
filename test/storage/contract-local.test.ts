import { promises as fs } from 'node:fs';
import { Store } from '../../src/storage/store.js';
import { tempDir } from '../helpers/fixtures.js';
import { storeContract } from './contract.js';

storeContract('local folder', async () => {
  const root = await tempDir();
  const store = await Store.open(root, { fsync: false });
  return {
    store,
    largeSize: 3 * 1024 * 1024 + 17,
    cleanup: async () => {
      await store.close();
      await fs.rm(root, { recursive: true, force: true });
    },
  };
});
