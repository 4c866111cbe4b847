// The client against bad input from outside: malformed server messages are
// logged and skipped without dropping the connection, and a storage that
// refuses a write (a full quota) surfaces as an error event while nothing
// already queued is lost; and the service worker's flush pushes a queue a
// page left behind.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { createClient, MemoryStorage, StorageError, type Storage, type StorageTx, type TransactionOptions } from '../../src/index.js';
import { api, startServer, type RunningServer } from '../support/server.js';

let server: RunningServer;

beforeAll(async () => {
  server = await startServer();
});

afterAll(async () => {
  await server.stop();
});

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A WebSocket proxy in front of the server that slips malformed frames in after the welcome. */
async function garblingProxy(target: string, garbage: string[]): Promise<{ url: string; close(): Promise<void> }> {
  const proxy = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => proxy.once('listening', resolve));
  proxy.on('connection', (client, request) => {
    const upstream = new WebSocket(`${target}${request.url?.replace(/^\/ws/, '') ?? ''}`);
    const early: string[] = [];
    upstream.on('open', () => {
      for (const message of early.splice(0)) upstream.send(message);
    });
    client.on('message', (data) => {
      const text = data.toString();
      if (upstream.readyState === WebSocket.OPEN) upstream.send(text);
      else early.push(text);
    });
    upstream.on('message', (data) => {
      const text = data.toString();
      client.send(text);
      if (text.includes('"type":"welcome"')) for (const frame of garbage) client.send(frame);
    });
    upstream.on('close', () => client.close());
    client.on('close', () => upstream.close());
  });
  const { port } = proxy.address() as { port: number };
  return {
    url: `ws://127.0.0.1:${port}/ws`,
    close: () => new Promise((resolve) => proxy.close(() => resolve())),
  };
}

describe('malformed server messages', () => {
  it('are logged and skipped; the connection stays and sync goes on', async () => {
    const garbage = ['not json', '42', '{"no":"type"}', '{"type":7}', '{"type":"update","collection":5}', '{"type":"teleport"}', '[]'];
    const proxy = await garblingProxy(server.wsUrl, garbage);
    const warnings: unknown[][] = [];
    const logger = { debug() {}, warn: (...args: unknown[]) => void warnings.push(args) };
    const client = await createClient({
      serverUrl: server.url,
      websocketUrl: proxy.url,
      collections: ['notes'],
      namespace: 'garbled',
      storage: 'memory',
      WebSocket: WebSocket as never,
      reconnectDelayMs: 50,
      logger,
    });
    let connected = 0;
    client.on('connected', () => void (connected += 1));
    await until(() => client.connectionState === 'connected');
    await until(() => warnings.length >= garbage.length);

    const notes = client.collection('notes');
    const id = await notes.save({ text: 'still works' });
    await api(server.url).sync({
      operations: [{ opId: 'garbled-remote', action: 'create', collection: 'notes', namespace: 'garbled', id: 'remote', data: { text: 'from elsewhere' } }],
    });
    await until(async () => (await client.pendingCount()) === 0 && (await notes.get('remote')) !== undefined);
    expect((await api(server.url).document('garbled', 'notes', id))?.data).toEqual({ text: 'still works' });
    expect(connected).toBe(1);
    expect(client.connectionState).toBe('connected');
    expect(warnings.length).toBe(garbage.length);
    await client.close();
    await proxy.close();
  });
});

/** Memory storage whose write transactions fail as a full IndexedDB quota does, while `full` is set. */
class FullableStorage implements Storage {
  full = false;
  readonly shared = false;
  readonly name = 'fullable';
  constructor(private readonly inner = new MemoryStorage()) {}
  transaction<T>(mode: 'readonly' | 'readwrite', steps: (tx: StorageTx) => Promise<T>, options?: TransactionOptions): Promise<T> {
    if (mode === 'readwrite' && this.full) {
      return Promise.reject(new StorageError('the browser refused to store more data (storage quota exceeded)', { quotaExceeded: true }));
    }
    return this.inner.transaction(mode, steps, options);
  }
  loadDocs(collection: string) {
    return this.inner.loadDocs(collection);
  }
  loadQueue() {
    return this.inner.loadQueue();
  }
  close(): void {}
}

describe('a full storage', () => {
  it('refuses the write with an error event and loses nothing queued before', async () => {
    const storage = new FullableStorage();
    // No server at first: the writes stay queued.
    const client = await createClient({
      serverUrl: 'http://127.0.0.1:9',
      collections: ['notes'],
      namespace: 'quota',
      storage,
      WebSocket: WebSocket as never,
      logger: { debug() {}, warn() {} },
    });
    const notes = client.collection('notes');
    await notes.save({ id: 'kept-1', text: 'one' });
    await notes.save({ id: 'kept-2', text: 'two' });
    const errors: string[] = [];
    client.on('error', (error) => void errors.push(error.message));

    storage.full = true;
    await expect(notes.save({ id: 'refused', text: 'three' })).rejects.toBeInstanceOf(StorageError);
    await expect(notes.update('kept-1', { text: 'changed' })).rejects.toThrow(/quota/);
    expect(errors.filter((message) => message.includes('quota'))).toHaveLength(2);
    expect(await client.pendingCount()).toBe(2);
    expect(await notes.get('refused')).toBeUndefined();
    expect(await notes.get('kept-1')).toEqual({ id: 'kept-1', text: 'one' });
    await client.close();

    // Room again, and a server: what was queued before arrives, once.
    storage.full = false;
    const again = await createClient({
      serverUrl: server.url,
      collections: ['notes'],
      namespace: 'quota',
      storage,
      WebSocket: WebSocket as never,
      logger: { debug() {}, warn() {} },
    });
    await again.syncNow();
    await until(async () => (await again.pendingCount()) === 0);
    const stored = await api(server.url).documents('quota', 'notes');
    expect(stored.map((doc) => [doc.id, doc.data['text'], doc.version])).toEqual([
      ['kept-1', 'one', 1],
      ['kept-2', 'two', 1],
    ]);
    await again.close();
  });
});

describe('the service worker flush', () => {
  it('pushes what a page queued and stored, once, and leaves the queue empty', async () => {
    const { flushQueue } = await import('../../src/service-worker.js');
    const storage = new MemoryStorage();
    const options = {
      collections: ['notes'],
      namespace: 'background',
      storage,
      WebSocket: WebSocket as never,
      logger: { debug() {}, warn() {} },
    };
    // The page queued writes and went away before the server could be reached.
    const page = await createClient({ ...options, serverUrl: 'http://127.0.0.1:9' });
    await page.collection('notes').save({ id: 'n1', text: 'one' });
    await page.collection('notes').save({ id: 'n2', text: 'two' });
    await page.collection('notes').update('n1', { text: 'one, edited' });
    await page.close();

    await flushQueue({ ...options, serverUrl: server.url });
    await flushQueue({ ...options, serverUrl: server.url });
    const stored = await api(server.url).documents('background', 'notes');
    expect(stored.map((doc) => [doc.id, doc.data['text'], doc.version])).toEqual([
      ['n1', 'one, edited', 1],
      ['n2', 'two', 1],
    ]);
    expect(await storage.loadQueue()).toEqual([]);
  });
});
