// Browser smoke tests of the harness: a page served by the static server
// talks to the real sync-server over WebSocket, and Playwright's offline
// mode cuts and restores the page's network.

import { expect, test } from './harness.js';

test('a page says hello over WebSocket and gets a welcome', async ({ page, appUrl, wsUrl }) => {
  await page.goto(`${appUrl}/test/browser/fixtures/smoke.html?ws=${encodeURIComponent(wsUrl)}`);
  await expect(page.locator('#status')).toHaveText('welcomed');
  const welcome = JSON.parse((await page.locator('#welcome').textContent()) ?? '{}');
  expect(welcome).toMatchObject({ type: 'welcome', heartbeatSecs: expect.any(Number) });
  expect(typeof welcome.cursor).toBe('string');
  expect(Number.isNaN(Date.parse(welcome.serverTime))).toBe(false);
});

test('offline mode makes fetch fail and online mode makes it work again', async ({
  page,
  context,
  appUrl,
  wsUrl,
  serverUrl,
}) => {
  await page.goto(`${appUrl}/test/browser/fixtures/smoke.html?ws=${encodeURIComponent(wsUrl)}`);
  const health = () =>
    page.evaluate(async (url) => {
      try {
        const response = await fetch(`${url}/health`, { cache: 'no-store' });
        return `status ${response.status}`;
      } catch (error) {
        return `failed: ${String(error)}`;
      }
    }, serverUrl);

  expect(await health()).toBe('status 200');
  // The listeners are in place before the switch, so no event is missed.
  await page.evaluate(() => {
    const seen: string[] = [];
    (window as unknown as { networkEvents: string[] }).networkEvents = seen;
    addEventListener('offline', () => seen.push(`offline onLine=${navigator.onLine}`));
    addEventListener('online', () => seen.push(`online onLine=${navigator.onLine}`));
  });
  const events = () =>
    page.evaluate(() => (window as unknown as { networkEvents: string[] }).networkEvents);

  await context.setOffline(true);
  await expect.poll(events).toEqual(['offline onLine=false']);
  expect(await health()).toMatch(/^failed: TypeError/);

  await context.setOffline(false);
  await expect.poll(events).toEqual(['offline onLine=false', 'online onLine=true']);
  expect(await health()).toBe('status 200');
});

// What offline mode does to WebSockets, which tests of reconnection rely
// on: new connections fail, but an open one is not closed; its frames are
// held until the context is online again.
test('offline mode refuses new WebSockets and holds the frames of open ones', async ({
  page,
  context,
  appUrl,
  wsUrl,
}) => {
  await page.goto(`${appUrl}/test/browser/fixtures/smoke.html?ws=${encodeURIComponent(wsUrl)}`);
  await expect(page.locator('#status')).toHaveText('welcomed');
  await page.evaluate(() => {
    const seen: string[] = [];
    (window as unknown as { socketEvents: string[] }).socketEvents = seen;
    const socket = (window as unknown as { smokeSocket: WebSocket }).smokeSocket;
    socket.addEventListener('message', (event) => seen.push(String(event.data)));
    socket.addEventListener('close', (event) => seen.push(`close ${event.code}`));
  });
  const events = () =>
    page.evaluate(() => (window as unknown as { socketEvents: string[] }).socketEvents);

  await context.setOffline(true);
  const opened = await page.evaluate(
    (url) =>
      new Promise<string>((resolve) => {
        const socket = new WebSocket(url);
        socket.onopen = () => resolve('open');
        socket.onerror = () => resolve('error');
      }),
    wsUrl,
  );
  expect(opened).toBe('error');

  await page.evaluate(() => {
    const socket = (window as unknown as { smokeSocket: WebSocket }).smokeSocket;
    socket.send(JSON.stringify({ type: 'ping' }));
  });
  await page.waitForTimeout(1_000);
  expect(await events()).toEqual([]);
  const readyState = await page.evaluate(
    () => (window as unknown as { smokeSocket: WebSocket }).smokeSocket.readyState,
  );
  expect(readyState).toBe(1); // OPEN

  await context.setOffline(false);
  await expect.poll(events).toEqual([expect.stringContaining('"type":"pong"')]);
});
