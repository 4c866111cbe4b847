// The console under other settings, each on a server of its own: in jwt
// mode it asks for a token, says clearly why a bad, expired or non-admin
// token is refused, and works with an admin token (kept for the tab's
// session); with `--console false` the server serves neither page.

import { expect, mintToken, screenshot, startServer, test } from './support.js';

const SECRET = 'the console tests secret, long enough';

test('in jwt mode the console asks for a token, explains a refused one and works with an admin token', async ({ page }) => {
  const server = await startServer({ env: { SYNC_AUTH: 'jwt', SYNC_JWT_SECRET: SECRET } });
  try {
    await page.goto(`${server.url}/`);
    const form = page.locator('form.signin');
    await expect(form).toContainText('JSON Web Tokens');
    const alert = form.getByRole('alert');
    const signIn = async (token: string) => {
      await form.getByLabel('Token').fill(token);
      await form.getByRole('button', { name: 'Sign in' }).click();
    };

    await signIn('not-a-token');
    await expect(alert).toContainText('The server refused this token');
    await screenshot(page, 'console-bad-token');

    await signIn(mintToken({ sub: 'ops', ns: ['*'], admin: true }, 'another secret, also long enough'));
    await expect(alert).toContainText('The server refused this token');

    await signIn(mintToken({ sub: 'ops', ns: ['*'], admin: true, exp: Math.floor(Date.now() / 1000) - 60 }, SECRET));
    await expect(alert).toContainText('The server refused this token');

    await signIn(mintToken({ sub: 'ana', ns: ['default'] }, SECRET));
    await expect(alert).toContainText('not an admin token');

    await signIn(mintToken({ sub: 'ops', ns: ['*'], admin: true }, SECRET));
    await expect(page.locator('[data-figure="connections"] .value')).toHaveText(/^\d+$/);
    await expect(page.getByRole('button', { name: 'Forget token' })).toBeVisible();
    await page.reload();
    await expect(page.locator('[data-figure="connections"] .value')).toHaveText(/^\d+$/);
    await page.getByRole('button', { name: 'Forget token' }).click();
    await expect(form).toBeVisible();
    await expect(alert).toHaveCount(0);
  } finally {
    await server.stop();
  }
});

test('with --console false the server serves neither the console nor the demo', async () => {
  const server = await startServer({ env: { SYNC_CONSOLE: 'false' } });
  try {
    for (const path of ['/', '/demo', '/demo-sw.js']) {
      const response = await fetch(`${server.url}${path}`);
      expect(response.status, path).toBe(404);
    }
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  } finally {
    await server.stop();
  }
});
