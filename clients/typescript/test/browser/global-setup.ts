// Playwright global setup: starts one real sync-server (CORS open to any
// origin) and a static file server over the package directory, publishes
// their URLs to the test workers through environment variables, and
// returns the teardown that stops both.

import { packageRoot, startServer } from '../support/server.js';
import { startStaticServer } from '../support/static-server.js';

export default async function globalSetup(): Promise<() => Promise<void>> {
  // The benchmark runs the server as in production (fsync); the tests, without.
  const durability = process.env.SYNC_TEST_DURABILITY;
  const server = await startServer({ cors: true, ...(durability ? { env: { SYNC_DURABILITY: durability } } : {}) });
  const files = await startStaticServer(packageRoot);
  // Workers start after this and inherit the environment.
  process.env.SYNC_TEST_SERVER_URL = server.url;
  process.env.SYNC_TEST_WS_URL = server.wsUrl;
  process.env.SYNC_TEST_APP_URL = files.url;
  return async () => {
    await files.close();
    await server.stop();
  };
}
