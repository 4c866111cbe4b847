// The console in Chromium against the real server (auth none): it loads
// and every page draws with no error in the browser console; a conflict
// made through the API is resolved from the inbox with the server's
// version while a subscribed WebSocket client receives the change;
// restoring version 1 from the document browser makes a new version equal
// to version 1; the live figures move under load; values holding HTML or
// script show as text; the live tail shows a change as it is committed.
// Takes the console's screenshots (into docs/ with SYNC_UPDATE_SCREENSHOTS=1).

import type { Page } from '@playwright/test';
import { api, expect, namespace, screenshot, serverUrl, subscribe, test, write } from './support.js';

async function figure(page: Page, name: string): Promise<number> {
  const text = await page.locator(`[data-figure="${name}"] .value`).textContent();
  return Number(text);
}

test('the console loads and draws every page with no error in the browser console', async ({ page, errors }) => {
  const url = serverUrl();
  const ns = namespace('pages');
  await write(url, { action: 'create', collection: 'todos', namespace: ns, id: 'first', data: { text: 'Buy milk', done: false } });
  const subscriber = await subscribe(url, ns, 'todos');

  const response = await page.goto(`${url}/`);
  expect(response?.status()).toBe(200);
  const policy = response?.headers()['content-security-policy'] ?? '';
  expect(policy).toContain("script-src 'self'");
  expect(policy).not.toContain('unsafe-inline');

  await expect(page.locator('[data-figure="connections"] .value')).toHaveText(/^\d+$/);
  for (const [link, heading] of [
    ['Devices', 'Devices'],
    ['Conflicts', 'Conflicts'],
    ['Documents', 'Documents'],
    ['Live tail', 'Live tail'],
    ['Overview', 'Overview'],
  ] as const) {
    await page.locator('#nav a', { hasText: link }).click();
    await expect(page.locator('main h2').first()).toHaveText(heading);
  }
  await page.goto(`${url}/#/devices`);
  await expect(page.locator('tr[data-device]').first()).toBeVisible();
  await page.goto(`${url}/#/documents?ns=${ns}&c=todos&id=first`);
  await expect(page.locator('pre[data-current]')).toContainText('Buy milk');
  // The demo's page loads without errors too.
  await page.goto(`${url}/demo?namespace=${ns}`);
  await expect(page.locator('#list li', { hasText: 'Buy milk' })).toHaveCount(1);
  await expect(page.locator('#state')).toHaveText('connected');
  subscriber.close();
  expect(errors).toEqual([]);
});

test('a conflict made through the API is resolved with the server version from the inbox', async ({ page, errors }) => {
  const url = serverUrl();
  const ns = namespace('conflict');
  const visitors = { collection: 'visitors', namespace: ns, id: 'uuid-456' };
  await write(url, {
    ...visitors,
    action: 'create',
    data: { name: 'John Smith', company: 'Tech Corp', title: 'Manager', interests: ['technology', 'innovation'] },
  });
  await write(
    url,
    { ...visitors, action: 'update', baseVersion: 1, data: { title: 'Director of Operations', interests: ['technology', 'innovation', 'leadership'] } },
    { deviceId: 'laptop' },
  );
  const result = await write(
    url,
    { ...visitors, action: 'update', baseVersion: 1, data: { title: 'Senior Manager', interests: ['technology', 'innovation', 'AI'] } },
    { deviceId: 'phone', strategy: 'manual' },
  );
  expect(result['status']).toBe('conflict');
  const conflictId = String(result['conflictId']);
  const before = await api(url).document(ns, 'visitors', visitors.id);
  expect(before?.version).toBe(2);
  const subscriber = await subscribe(url, ns, 'visitors');

  await page.goto(`${url}/#/conflicts`);
  const card = page.locator(`article[data-conflict-id="${conflictId}"]`);
  await expect(card).toHaveAttribute('data-status', 'pending');
  const title = card.locator('tr[data-field="title"]');
  await expect(title.locator('td').nth(0)).toContainText('"Manager"');
  await expect(title.locator('td').nth(1)).toContainText('"Director of Operations"');
  await expect(title.locator('td').nth(2)).toContainText('"Senior Manager"');
  await expect(card.locator('tr[data-field="interests"]')).toContainText('"leadership"');
  await card.scrollIntoViewIfNeeded();
  await screenshot(page, 'console-conflicts');

  await card.getByRole('button', { name: 'Use server version' }).click();
  await expect(card).toHaveAttribute('data-status', 'resolved');
  await expect(card.locator('.outcome')).toContainText('the document is now version 3');
  await expect(card.locator('.outcome pre')).toContainText('Director of Operations');

  const after = await api(url).document(ns, 'visitors', visitors.id);
  expect(after?.version).toBe(3);
  expect(after?.data).toEqual(before?.data);
  const pushed = await subscriber.next((message) => message['recordId'] === visitors.id && message['version'] === 3);
  expect(pushed['type']).toBe('update');
  expect(pushed['data']).toEqual(before?.data);
  const conflict = await api(url).get<{ status: string; resolvedData: unknown }>(`/v1/conflicts/${conflictId}`);
  expect(conflict.body).toMatchObject({ status: 'resolved', resolvedData: before?.data });
  subscriber.close();
  expect(errors).toEqual([]);
});

test('restoring version 1 from the document browser makes a new version equal to version 1', async ({ page, errors }) => {
  const url = serverUrl();
  const ns = namespace('restore');
  const note = { collection: 'notes', namespace: ns, id: 'draft' };
  await write(url, { ...note, action: 'create', data: { title: 'First draft', words: 120, tags: ['idea'] } });
  await write(url, { ...note, action: 'update', baseVersion: 1, data: { title: 'Second draft', words: 480 } });
  await write(url, { ...note, action: 'update', baseVersion: 2, data: { tags: null, reviewed: true } });
  const first = await api(url).get<{ data: Record<string, unknown> }>(`/v1/ns/${ns}/notes/draft/versions/1`);

  await page.goto(`${url}/#/documents?ns=${ns}&c=notes&id=draft`);
  await expect(page.locator('.history tbody tr')).toHaveCount(3);
  await expect(page.locator('.history tr[data-version="2"] pre.delta')).toContainText('"Second draft"');
  await page.locator('[data-restore="1"]').click();
  await page.locator('[data-confirm="1"]').click();
  await expect(page.locator('[data-document="draft"] [role="status"]')).toHaveText('Restored version 1 as version 4.');
  await expect(page.locator('.history tbody tr')).toHaveCount(4);
  await expect(page.locator('pre[data-current]')).toContainText('First draft');
  await page.evaluate(() => window.scrollTo(0, 0));
  await screenshot(page, 'console-documents');

  const restored = await api(url).document(ns, 'notes', 'draft');
  expect(restored?.version).toBe(4);
  expect(restored?.data).toEqual(first.body.data);
  await page.locator('.history tr[data-version="1"]').getByRole('button', { name: 'Show' }).click();
  await expect(page.locator('pre[data-version="1"]')).toContainText('First draft');
  expect(errors).toEqual([]);
});

test('the live figures move when a load runs', async ({ page, errors }) => {
  const url = serverUrl();
  const ns = namespace('load');
  const subscribers = await Promise.all([subscribe(url, ns, 'events'), subscribe(url, ns, 'events')]);
  await page.goto(`${url}/`);
  await expect(page.locator('[data-figure="operations"] .value')).toHaveText(/^[\d.]+$/);

  let running = true;
  const load = (async () => {
    const deadline = Date.now() + 40_000;
    for (let round = 0; running && Date.now() < deadline; round++) {
      const operations = Array.from({ length: 25 }, (_, i) => ({
        opId: `load-${round}-${i}-${Math.random().toString(36).slice(2)}`,
        action: 'create',
        collection: 'events',
        namespace: ns,
        id: `e-${round}-${i}`,
        timestamp: new Date().toISOString(),
        data: { round, i },
      }));
      await api(url).sync({ operations, deviceId: 'load' });
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
  })();
  try {
    await expect.poll(() => figure(page, 'operations'), { timeout: 20_000 }).toBeGreaterThan(0);
    await expect.poll(() => figure(page, 'deliveries'), { timeout: 20_000 }).toBeGreaterThan(0);
    expect(await figure(page, 'connections')).toBeGreaterThanOrEqual(2);
    expect(await figure(page, 'subscriptions')).toBeGreaterThanOrEqual(2);
    expect(await figure(page, 'head')).toBeGreaterThan(0);
    await expect
      .poll(async () => Number(await page.locator('[data-figure="operations"] polyline').getAttribute('data-points')))
      .toBeGreaterThanOrEqual(5);
    await screenshot(page, 'console-overview');
  } finally {
    running = false;
    await load;
    for (const subscriber of subscribers) subscriber.close();
  }
  expect(errors).toEqual([]);
});

test('values holding HTML or script show as text', async ({ page, errors }) => {
  const url = serverUrl();
  const ns = namespace('escape');
  const script = '<script>window.__pwned = 1</script>';
  const image = '<img src=x onerror="window.__pwned = 2">';
  const doc = { collection: 'pages', namespace: ns, id: 'evil' };
  await write(url, { ...doc, action: 'create', data: { title: script, body: image, nested: { html: '<b>bold</b>' } } });
  await write(url, { ...doc, action: 'update', baseVersion: 1, data: { title: `${script}!` } });
  const conflict = await write(
    url,
    { ...doc, action: 'update', baseVersion: 1, data: { title: image } },
    { strategy: 'manual', deviceId: 'another-device' },
  );
  expect(conflict['status']).toBe('conflict');

  await page.goto(`${url}/#/documents?ns=${ns}&c=pages&id=evil`);
  const current = page.locator('pre[data-current]');
  await expect(current).toContainText(script);
  await expect(current).toContainText(image.replaceAll('"', '\\"'));
  await expect(page.locator('main tbody tr[data-id="evil"]')).toContainText('<b>bold</b>');

  await page.goto(`${url}/#/conflicts`);
  const card = page.locator(`article[data-conflict-id="${String(conflict['conflictId'])}"]`);
  await expect(card.locator('tr[data-field="title"]')).toContainText(script);
  await expect(card.locator('tr[data-field="title"]')).toContainText('onerror');

  await page.goto(`${url}/#/tail?ns=${ns}`);
  await expect(page.locator('main [role="status"]')).toContainText('Following');
  await write(url, { ...doc, id: 'evil-2', action: 'create', data: { title: script } });
  await expect(page.locator('main tr[data-id="evil-2"]')).toContainText('<script>');

  expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  await expect(page.locator('main img, main b, main script')).toHaveCount(0);
  expect(errors).toEqual([]);
});

test('the live tail shows changes as they are committed, newest first', async ({ page, errors }) => {
  const url = serverUrl();
  const ns = namespace('tail');
  await page.goto(`${url}/#/tail?ns=${ns}`);
  await expect(page.locator('main [role="status"]')).toContainText('Following');
  for (const id of ['a', 'b']) {
    await write(url, { action: 'create', collection: 'todos', namespace: ns, id, data: { text: id } });
  }
  await write(url, { action: 'delete', collection: 'todos', namespace: ns, id: 'a' });
  const rows = page.locator('main tbody tr');
  await expect(rows).toHaveCount(3);
  await expect(rows.nth(0)).toHaveClass('op-delete');
  await expect(rows.nth(2)).toContainText('insert');
  await rows.nth(1).getByRole('link', { name: 'b' }).click();
  await expect(page.locator('pre[data-current]')).toContainText('"text": "b"');
  expect(errors).toEqual([]);
});

test('a conflict resolved with an edited document keeps the fields neither side changed', async ({ page, errors }) => {
  const url = serverUrl();
  const ns = namespace('edit');
  const todo = { collection: 'todos', namespace: ns, id: 't1' };
  await write(url, { ...todo, action: 'create', data: { text: 'Buy milk', done: false, tags: ['home'] } });
  await write(url, { ...todo, action: 'update', baseVersion: 1, data: { text: 'Buy oat milk' } }, { deviceId: 'laptop' });
  const result = await write(
    url,
    { ...todo, action: 'update', baseVersion: 1, data: { text: 'Buy soy milk', done: true } },
    { deviceId: 'phone', strategy: 'manual' },
  );
  await page.goto(`${url}/#/conflicts`);
  const card = page.locator(`article[data-conflict-id="${String(result['conflictId'])}"]`);
  await card.getByRole('button', { name: 'Edit…' }).click();
  const editor = card.locator('textarea');
  await expect(editor).toBeEnabled();
  const draft = JSON.parse(await editor.inputValue()) as Record<string, unknown>;
  expect(draft).toEqual({ text: 'Buy soy milk', done: true, tags: ['home'] });
  await editor.fill('{"text": "Buy oat and soy milk", ');
  await card.getByRole('button', { name: 'Resolve with this document' }).click();
  await expect(card.locator('.editor .error')).toContainText('Not valid JSON');
  await editor.fill(JSON.stringify({ ...draft, text: 'Buy oat and soy milk' }));
  await card.getByRole('button', { name: 'Resolve with this document' }).click();
  await expect(card).toHaveAttribute('data-status', 'resolved');
  await expect(card.locator('.outcome')).toContainText('an edited document');
  const after = await api(url).document(ns, 'todos', 't1');
  expect(after?.data).toEqual({ text: 'Buy oat and soy milk', done: true, tags: ['home'] });
  expect(errors).toEqual([]);
});
