import { promises as fs } from 'node:fs';
import { S3Store } from '../../src/storage/s3/store.js';
import { tempDir } from '../helpers/fixtures.js';
import { s3Scratch, s3Skip, TEST_PART_SIZE } from '../helpers/s3.js';
import { storeContract } from './contract.js';

storeContract(
  'S3',
  async () => {
    const scratch = await s3Scratch();
    const stateRoot = await tempDir();
    const store = await S3Store.open(scratch.location, { stateRoot, partSize: TEST_PART_SIZE });
    return {
      store,
      largeSize: 2 * TEST_PART_SIZE + 12345,
      cleanup: async () => {
        await store.close();
        await scratch.cleanup();
        await fs.rm(stateRoot, { recursive: true, force: true });
      },
    };
  },
  s3Skip(),
);
