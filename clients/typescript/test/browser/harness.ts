// The browser tests' `test`: Playwright's, with the URLs of the sync-server
// and of the static file server that the global setup started.

import { test as base } from '@playwright/test';

export { expect } from '@playwright/test';

export interface Servers {
  /** The sync-server, `http://127.0.0.1:PORT`. */
  serverUrl: string;
  /** Its WebSocket endpoint, `ws://127.0.0.1:PORT/ws`. */
  wsUrl: string;
  /** The static file server over clients/typescript, `http://127.0.0.1:PORT`. */
  appUrl: string;
}

function fromEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') {
    throw new Error(`${name} is not set: run the browser tests with \`npm run test:browser\``);
  }
  return value;
}

export const test = base.extend<{}, Servers>({
  serverUrl: [async ({}, use) => use(fromEnv('SYNC_TEST_SERVER_URL')), { scope: 'worker' }],
  wsUrl: [async ({}, use) => use(fromEnv('SYNC_TEST_WS_URL')), { scope: 'worker' }],
  appUrl: [async ({}, use) => use(fromEnv('SYNC_TEST_APP_URL')), { scope: 'worker' }],
});
