// The console under other settings, each on a server of its own: in jwt
// mode it asks for a token, says clearly why a bad, expired or non-admin
// token is refused, and works with an admin token (kept for the tab's
// session), and `GET /v1/collections` lists only the token's namespaces;
// with `--console false` the server serves neither page.

import { api, expect, mintToken, screenshot, startServer, test, write } from './support.js';

const SECRET = 'the console tests secret, long enough';

test('GET /v1/collections lists the collections of the namespaces the token may read', async () => {
  const server = await startServer({ env: { SYNC_AUTH: 'jwt', SYNC_JWT_SECRET: SECRET } });
  try {
    const admin = mintToken({ sub: 'ops', ns: ['*'], admin: true }, SECRET);
    for (const [ns, collection] of [['a', 'todos'], ['a', 'notes'], ['b', 'todos']] as const) {
      await write(server.url, { action: 'create', namespace: ns, collection, id: 'x', data: { n: 1 } }, { token: admin });
    }
    const list = async (token?: string) => {
      const answer = await api(server.url).get<{ collections: unknown[]; complete: boolean }>(
        '/v1/collections',
        token === undefined ? {} : { token },
      );
      return { status: answer.status, body: answer.body };
    };
    expect((await list()).status).toBe(401);
    expect((await list(admin)).body).toEqual({
      collections: [
        { namespace: 'a', collection: 'notes' },
        { namespace: 'a', collection: 'todos' },
        { namespace: 'b', collection: 'todos' },
      ],
      complete: true,
    });
    const reader = mintToken({ sub: 'ana', ns: [], ro: ['b'] }, SECRET);
    expect((await list(reader)).body).toEqual({ collections: [{ namespace: 'b', collection: 'todos' }], complete: true });
  } finally {
    await server.stop();
  }
});

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

    // Each step waits for its own reason, so that the next sign-in does not
    // race the answer to this one.
    await signIn('not-a-token');
    await expect(alert).toContainText('The server refused this token: token refused: malformed');
    await screenshot(page, 'console-bad-token');

    await signIn(mintToken({ sub: 'ops', ns: ['*'], admin: true }, 'another secret, also long enough'));
    await expect(alert).toContainText('The server refused this token: token refused: bad signature');

    await signIn(mintToken({ sub: 'ops', ns: ['*'], admin: true, exp: Math.floor(Date.now() / 1000) - 60 }, SECRET));
    await expect(alert).toContainText('The server refused this token: token refused: expired');

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
