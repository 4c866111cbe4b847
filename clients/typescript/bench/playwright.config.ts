// Playwright settings for the browser benchmark (`npm run bench`): the
// same servers as the browser tests (one sync-server, one static file
// server), Debian's Chromium, one worker, generous time.

import { defineConfig } from '@playwright/test';

// Acknowledged writes are fsynced, as in production.
process.env.SYNC_TEST_DURABILITY ??= 'fsync';

export default defineConfig({
  testDir: '.',
  testMatch: 'browser.bench.ts',
  globalSetup: '../test/browser/global-setup.ts',
  outputDir: '../test-results/bench',
  reporter: 'list',
  workers: 1,
  retries: 0,
  timeout: 300_000,
  use: {
    browserName: 'chromium',
    headless: true,
    launchOptions: { executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium' },
  },
});
