// Playwright global setup: starts one real sync-server (auth none, the
// console on) for the test files, publishes its URL to the workers through
// the environment, and returns the teardown that stops it. Tests that need
// other settings (jwt, the console off) start their own.

import { startServer } from './support.js';

export default async function globalSetup(): Promise<() => Promise<void>> {
  const server = await startServer();
  process.env.SYNC_TEST_SERVER_URL = server.url;
  return () => server.stop();
}
