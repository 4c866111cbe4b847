// What the console's and the demo's tests share: the server the global
// setup started (as a fixture), the errors a page printed, unique
// namespaces, HS256 tokens for jwt-mode servers, a WebSocket subscriber
// speaking the protocol (the `ws` package) and the screenshots (written to
// docs/ with SYNC_UPDATE_SCREENSHOTS=1). Starting the server and the HTTP helpers are the TypeScript
// client's test support, reused.

import { test as base, expect, type Page } from '@playwright/test';
import { createHmac } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { api, repoRoot, startServer } from '../../clients/typescript/test/support/server.js';

export { api, expect, startServer };

/** The server of the global setup. */
export function serverUrl(): string {
  const url = process.env.SYNC_TEST_SERVER_URL;
  if (!url) throw new Error('SYNC_TEST_SERVER_URL is not set: run the tests with `npm test`');
  return url;
}

/** Playwright's `test`, with `errors`: what the page printed as errors and threw, gathered from the start. */
export const test = base.extend<{ errors: string[] }>({
  errors: async ({ page }, use) => {
    const errors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(`console: ${message.text()}`);
    });
    page.on('pageerror', (error) => errors.push(`uncaught: ${error.message}`));
    await use(errors);
  },
});

/** A namespace of its own, so tests sharing one server do not see each other. */
export function namespace(name: string): string {
  return `${name}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;
}

/** An HS256 JSON Web Token with `claims` (and an `exp` an hour ahead unless given). */
export function mintToken(claims: Record<string, unknown>, secret: string): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const body = { exp: Math.floor(Date.now() / 1000) + 3600, ...claims };
  const unsigned = `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode(body)}`;
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
}

/** A protocol message as the server sends it. */
export type Message = Record<string, unknown> & { type: string };

/** A WebSocket client subscribed to one collection of one namespace. */
export interface Subscriber {
  readonly messages: Message[];
  /** Resolves with the first message (received so far or later) that `matches`. */
  next(matches: (message: Message) => boolean, timeoutMs?: number): Promise<Message>;
  close(): void;
}

/** Connects to `url` (`http://…`), says hello and subscribes; resolves once `subscribed` arrives. */
export async function subscribe(url: string, ns: string, collection: string, token?: string): Promise<Subscriber> {
  const wsUrl = `${url.replace(/^http/, 'ws')}/ws${token ? `?token=${encodeURIComponent(token)}` : ''}`;
  const socket = new WebSocket(wsUrl);
  const messages: Message[] = [];
  const waiters = new Set<() => void>();
  socket.on('message', (data) => {
    messages.push(JSON.parse(data.toString()) as Message);
    for (const wake of waiters) wake();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  const next = (matches: (message: Message) => boolean, timeoutMs = 10_000) =>
    new Promise<Message>((resolve, reject) => {
      const look = () => {
        const found = messages.find(matches);
        if (!found) return false;
        waiters.delete(look);
        clearTimeout(timer);
        resolve(found);
        return true;
      };
      const timer = setTimeout(() => {
        waiters.delete(look);
        reject(new Error(`no such message within ${timeoutMs} ms; received: ${JSON.stringify(messages)}`));
      }, timeoutMs);
      if (!look()) waiters.add(look);
    });
  socket.send(JSON.stringify({ type: 'hello', deviceId: `test-subscriber-${Math.random().toString(36).slice(2)}` }));
  socket.send(JSON.stringify({ type: 'subscribe', id: 'sub', collection, namespace: ns }));
  await next((message) => message.type === 'subscribed');
  return { messages, next, close: () => socket.close() };
}

/**
 * Takes `page`'s screenshot: into docs/<name>.png, the pictures the README
 * shows, when `SYNC_UPDATE_SCREENSHOTS=1` (so a test run leaves the tracked
 * files alone), else into test-results/.
 */
export async function screenshot(page: Page, name: string): Promise<void> {
  const update = process.env['SYNC_UPDATE_SCREENSHOTS'] === '1';
  const dir = update ? path.join(repoRoot, 'docs') : path.join(repoRoot, 'web', 'test-results', 'screenshots');
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`) });
}

/** `POST /v1/sync` of one operation; the result. */
export async function write(
  url: string,
  operation: Record<string, unknown>,
  options: { strategy?: string; deviceId?: string; token?: string } = {},
): Promise<Record<string, unknown>> {
  const body: Record<string, unknown> = {
    operations: [{ opId: `op-${Math.random().toString(36).slice(2)}`, timestamp: new Date().toISOString(), ...operation }],
    deviceId: options.deviceId ?? 'test-writer',
  };
  if (options.strategy) body['strategy'] = options.strategy;
  const answer = await api(url, options.token ? { token: options.token } : {}).sync<{ results: Record<string, unknown>[] }>(
    body,
  );
  const [result] = answer.results;
  if (!result) throw new Error(`no result: ${JSON.stringify(answer)}`);
  return result;
}
