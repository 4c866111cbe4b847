// Playwright settings for the console's and the demo's tests: Chromium
// only (Debian's binary, or CHROMIUM_PATH; no browser is downloaded), one
// worker, against the real sync-server binary (SYNC_SERVER_BIN, else the
// workspace's debug build) that the global setup starts on an ephemeral
// port over a temporary data directory.

import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: 'test',
  testMatch: '**/*.test.ts',
  globalSetup: './test/global-setup.ts',
  outputDir: 'test-results',
  reporter: 'list',
  workers: 1,
  fullyParallel: false,
  retries: 0,
  forbidOnly: Boolean(process.env.CI),
  timeout: 60_000,
  expect: { timeout: 10_000 },
  use: {
    browserName: 'chromium',
    headless: true,
    viewport: { width: 1280, height: 800 },
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    },
    trace: 'retain-on-failure',
  },
  projects: [{ name: 'chromium' }],
});
