// The client in Chromium against the real server: two browsers converge
// through an offline spell, a reload with queued writes loses nothing, the
// tabs of one browser share one WebSocket and the next tab carries on when
// the one holding it closes, and the React hook re-renders on a remote
// change.

import { build } from 'esbuild';
import path from 'node:path';
import type { Page } from '@playwright/test';
import { api, metric, packageRoot } from '../support/server.js';
import { expect, test } from './harness.js';

/** A namespace of its own per test, so tests sharing one server do not see each other. */
function namespace(name: string): string {
  return `${name}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;
}

function todoUrl(appUrl: string, serverUrl: string, ns: string, extra = ''): string {
  return `${appUrl}/examples/todo.html?server=${encodeURIComponent(serverUrl)}&namespace=${ns}${extra}`;
}

async function add(page: Page, text: string): Promise<void> {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
  await expect(page.locator('#list li', { hasText: text })).toHaveCount(1);
}

async function texts(page: Page): Promise<string[]> {
  return (await page.locator('#list li span').allTextContents()).sort();
}

async function serverTexts(serverUrl: string, ns: string): Promise<string[]> {
  const docs = await api(serverUrl).documents(ns, 'todos');
  return docs.filter((doc) => !doc.deleted).map((doc) => String(doc.data['text'])).sort();
}

test('two browsers converge after one of them was offline', async ({ browser, appUrl, serverUrl }) => {
  const ns = namespace('offline');
  const first = await browser.newContext();
  const second = await browser.newContext();
  const a = await first.newPage();
  const b = await second.newPage();
  await a.goto(todoUrl(appUrl, serverUrl, ns));
  await b.goto(todoUrl(appUrl, serverUrl, ns));
  await expect(a.locator('#state')).toHaveText('connected');
  await expect(b.locator('#state')).toHaveText('connected');

  await add(a, 'shared before');
  await expect(b.locator('#list li', { hasText: 'shared before' })).toHaveCount(1);

  await second.setOffline(true);
  await expect(b.locator('#state')).toHaveText('disconnected');
  await add(b, 'written offline 1');
  await add(b, 'written offline 2');
  await b.locator('#list li', { hasText: 'shared before' }).locator('input[type=checkbox]').check();
  await add(a, 'written online');
  await expect(b.locator('#pending')).toHaveText('3 waiting');
  // Nothing of the offline browser's reached the other one.
  await expect(a.locator('#list li', { hasText: 'written offline 1' })).toHaveCount(0);

  await second.setOffline(false);
  await expect(b.locator('#state')).toHaveText('connected');
  await expect(b.locator('#pending')).toHaveText('');
  const expected = ['shared before', 'written offline 1', 'written offline 2', 'written online'];
  await expect.poll(() => texts(a)).toEqual(expected);
  await expect.poll(() => texts(b)).toEqual(expected);
  await expect.poll(() => serverTexts(serverUrl, ns)).toEqual(expected);
  await expect(a.locator('#list li', { hasText: 'shared before' }).locator('input[type=checkbox]')).toBeChecked();
  await first.close();
  await second.close();
});

test('a reload with queued writes loses nothing and sends each once', async ({ page, appUrl, serverUrl }) => {
  const ns = namespace('reload');
  const db = `reload-${ns}`;
  // A server nobody listens on: the writes stay queued.
  const unreachable = 'http://127.0.0.1:9';
  await page.goto(todoUrl(appUrl, unreachable, ns, `&db=${db}`));
  for (const text of ['one', 'two', 'three']) await add(page, text);
  await expect(page.locator('#pending')).toHaveText('3 waiting');
  await page.reload();
  await expect.poll(() => texts(page)).toEqual(['one', 'three', 'two']);
  await expect(page.locator('#pending')).toHaveText('3 waiting');

  // The same stored queue, now with the real server.
  await page.goto(todoUrl(appUrl, serverUrl, ns, `&db=${db}`));
  await expect(page.locator('#state')).toHaveText('connected');
  await expect(page.locator('#pending')).toHaveText('');
  await expect.poll(() => serverTexts(serverUrl, ns)).toEqual(['one', 'three', 'two']);
  const docs = await api(serverUrl).documents(ns, 'todos');
  expect(docs.map((doc) => doc.version)).toEqual([1, 1, 1]);
});

test('the tabs of a browser share one WebSocket, and the next tab carries on when it closes', async ({
  context,
  appUrl,
  serverUrl,
}) => {
  const ns = namespace('tabs');
  const before = await metric(serverUrl, 'sync_connections');
  const first = await context.newPage();
  // The first tab's socket swallows the writes of the "queued" todos, so
  // they are still unanswered, sent but not acknowledged, when it closes.
  await first.routeWebSocket(/\/ws/, (socket) => {
    const server = socket.connectToServer();
    socket.onMessage((message) => {
      if (!String(message).includes('"text":"queued')) server.send(message);
    });
  });
  await first.goto(todoUrl(appUrl, serverUrl, ns));
  await expect(first.locator('#state')).toHaveText('connected');
  const second = await context.newPage();
  await second.goto(todoUrl(appUrl, serverUrl, ns));
  await expect(second.locator('#state')).toHaveText('connected');
  await expect.poll(() => metric(serverUrl, 'sync_connections')).toBe(before + 1);

  // A write in either tab shows in the other.
  await add(second, 'from the second tab');
  await expect(first.locator('#list li', { hasText: 'from the second tab' })).toHaveCount(1);
  await add(first, 'from the first tab');
  await expect(second.locator('#list li', { hasText: 'from the first tab' })).toHaveCount(1);

  // Writes queued in the second tab are on their way through the first one, holding the connection, when it closes.
  const queued = ['queued 1', 'queued 2', 'queued 3'];
  await second.evaluate(async (texts) => {
    const client = (window as unknown as { syncClient: { collection(name: string): { save(doc: object): Promise<string> } } }).syncClient;
    for (const text of texts) await client.collection('todos').save({ text, done: false, createdAt: new Date().toISOString() });
  }, queued);
  await expect(second.locator('#pending')).toHaveText('3 waiting');
  await expect.poll(() => serverTexts(serverUrl, ns)).toEqual(['from the first tab', 'from the second tab']);
  await first.close();
  await expect(second.locator('#state')).toHaveText('connected');
  await expect(second.locator('#pending')).toHaveText('');
  const expected = ['from the first tab', 'from the second tab', ...queued].sort();
  await expect.poll(() => serverTexts(serverUrl, ns)).toEqual(expected);
  const docs = await api(serverUrl).documents(ns, 'todos');
  expect(docs.every((doc) => doc.version === 1)).toBe(true);
  await expect.poll(() => metric(serverUrl, 'sync_connections')).toBe(before + 1);
  await second.close();
  await expect.poll(() => metric(serverUrl, 'sync_connections')).toBe(before);
});

test('the React hook re-renders on a remote change', async ({ page, appUrl, serverUrl }) => {
  const ns = namespace('react');
  const bundle = await build({
    entryPoints: [path.join(packageRoot, 'test/browser/fixtures/react-app.tsx')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const code = bundle.outputFiles[0]?.text ?? '';
  await page.route('**/fixtures/react-app.js', (route) => route.fulfill({ body: code, contentType: 'text/javascript' }));
  await page.goto(`${appUrl}/test/browser/fixtures/react.html?server=${encodeURIComponent(serverUrl)}&namespace=${ns}`);
  await expect(page.locator('#status')).toHaveText('connected');
  await expect(page.locator('#status')).toHaveAttribute('data-from-cache', 'false');
  const renders = Number(await page.locator('#renders').textContent());

  await api(serverUrl).sync({
    operations: [{ opId: `remote-${ns}`, action: 'create', collection: 'todos', namespace: ns, id: 'remote-1', data: { text: 'from elsewhere' } }],
  });
  await expect(page.locator('#list li[data-id="remote-1"]')).toHaveText('from elsewhere');
  expect(Number(await page.locator('#renders').textContent())).toBeGreaterThan(renders);
});
