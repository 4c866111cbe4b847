// The todo demo in Chromium against the real server: two browsers
// converge, one of them through an offline spell with a reload while
// offline (the service worker serves the page, IndexedDB the todos and the
// queue); two tabs of one browser share every change.

import type { Page } from '@playwright/test';
import { api, expect, namespace, screenshot, serverUrl, test } from './support.js';

function demoUrl(ns: string): string {
  return `${serverUrl()}/demo?namespace=${ns}`;
}

async function add(page: Page, text: string): Promise<void> {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
  await expect(page.locator('#list li', { hasText: text })).toHaveCount(1);
}

async function texts(page: Page): Promise<string[]> {
  return (await page.locator('#list li span').allTextContents()).sort();
}

async function serverTexts(ns: string): Promise<string[]> {
  const docs = await api(serverUrl()).documents(ns, 'todos');
  return docs.filter((doc) => !doc.deleted).map((doc) => String(doc.data['text'])).sort();
}

test('two browsers converge, one of them offline with a reload and back', async ({ browser }) => {
  const ns = namespace('demo');
  const first = await browser.newContext();
  const second = await browser.newContext();
  const a = await first.newPage();
  const b = await second.newPage();
  await a.goto(demoUrl(ns));
  await b.goto(demoUrl(ns));
  await expect(a.locator('#state')).toHaveText('connected');
  await expect(b.locator('#state')).toHaveText('connected');
  await expect(b.locator('#offline')).toBeHidden();

  await add(a, 'shared before');
  await expect(b.locator('#list li', { hasText: 'shared before' })).toHaveCount(1);
  // The service worker has kept the page, so it reloads offline.
  await b.evaluate(() => navigator.serviceWorker.ready.then(() => undefined));

  await second.setOffline(true);
  await expect(b.locator('#offline')).toBeVisible();
  await add(b, 'written offline 1');
  await b.locator('#list li', { hasText: 'shared before' }).locator('input[type=checkbox]').check();
  await add(a, 'written online');
  await expect(b.locator('#pending')).toHaveText('2 waiting');

  await b.reload();
  await expect(b.locator('#list li', { hasText: 'written offline 1' })).toHaveCount(1);
  await add(b, 'written offline 2');
  await expect(b.locator('#pending')).toHaveText('3 waiting');
  await expect(b.locator('#offline')).toBeVisible();
  await expect(a.locator('#list li', { hasText: 'written offline 1' })).toHaveCount(0);

  await second.setOffline(false);
  await expect(b.locator('#state')).toHaveText('connected');
  await expect(b.locator('#pending')).toHaveText('');
  const expected = ['shared before', 'written offline 1', 'written offline 2', 'written online'];
  await expect.poll(() => texts(a)).toEqual(expected);
  await expect.poll(() => texts(b)).toEqual(expected);
  await expect.poll(() => serverTexts(ns)).toEqual(expected);
  await expect(a.locator('#list li', { hasText: 'shared before' }).locator('input[type=checkbox]')).toBeChecked();
  await screenshot(a, 'demo');
  await first.close();
  await second.close();
});

test('two tabs of one browser share every change', async ({ context }) => {
  const ns = namespace('tabs');
  const a = await context.newPage();
  const b = await context.newPage();
  await a.goto(demoUrl(ns));
  await b.goto(demoUrl(ns));
  await expect(a.locator('#state')).toHaveText('connected');
  await add(a, 'from the first tab');
  await add(b, 'from the second tab');
  await expect.poll(() => texts(a)).toEqual(['from the first tab', 'from the second tab']);
  await b.locator('#list li', { hasText: 'from the first tab' }).locator('input[type=checkbox]').check();
  await expect(a.locator('#list li', { hasText: 'from the first tab' })).toHaveClass('done');
  await a.locator('#list li', { hasText: 'from the second tab' }).getByRole('button', { name: 'Delete' }).click();
  await expect.poll(() => texts(b)).toEqual(['from the first tab']);
  await expect.poll(() => serverTexts(ns)).toEqual(['from the first tab']);
});
