/**
 * The HTTP API on PostgreSQL and S3 (s3rver), with originals in S3 too. This
 * file gets a fresh database and a fresh bucket of its own.
 */
import t from 'tap';
import { unique } from '../helpers/fixtures.js';
import { startTestServer } from '../helpers/processes.js';
import { freshDatabase } from '../helpers/stores.js';
import { startS3rver } from '../helpers/s3.js';
import { apiSuite } from './suite.js';

const url = process.env.IAAS_TEST_DATABASE_URL;

if (url === undefined || url === '') {
  t.comment('PostgreSQL + S3 suite skipped: set IAAS_TEST_DATABASE_URL');
} else {
  const adminUrl = url;
  let databaseUrl = '';
  let s3: Awaited<ReturnType<typeof startS3rver>> | undefined;
  t.before(async () => {
    const database = await freshDatabase(adminUrl);
    t.teardown(() => database.drop());
    databaseUrl = database.url;
    s3 = await startS3rver({ bucket: unique('iaas-api') });
    t.teardown(() => s3?.stop());
  });
  apiSuite(
    t,
    (overrides = {}) => {
      if (!s3) throw new Error('s3rver is not running');
      return startTestServer({
        database_url: databaseUrl,
        'aws.bucket': s3.bucket,
        'aws.endpoint': s3.endpoint,
        'aws.access_key': 'S3RVER',
        'aws.secret_key': 'S3RVER',
        'aws.store_originals': true,
        ...overrides,
      });
    },
    'postgres-s3',
  );
}
