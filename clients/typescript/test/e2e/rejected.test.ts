// An operation the server refuses (a document over its size limit) is a rejected event, leaves the queue and blocks nothing behind it.

import { describe, expect, it } from 'vitest';

import { MemoryStorage } from '../../src/index.js';
import { api, startServer } from '../support/server.js';
import { serverForFile, closeClient, expectWholeHistory, history, openClient, record, spyingWebSocket, unreachableUrl, waitConverged, waitFor } from './helpers.js';

const server = serverForFile({ config: '[limits]\ndocument_bytes_max = 1024\n' });

const BIG = 'x'.repeat(4_000);

describe.each([
  { transport: 'WebSocket', namespace: 'over-ws', enableRealtimeSync: true },
  { transport: 'HTTP', namespace: 'over-http', enableRealtimeSync: false },
])('a refused operation over $transport', ({ namespace, enableRealtimeSync }) => {
  it('is rejected with too_large, leaves the queue, and the writes behind it are applied', async () => {
    const storage = new MemoryStorage();
    const options = { storage, namespace, enableRealtimeSync, longPollSecs: 5 };
    const online = await openClient(server, options);
    await online.collection('todos').save({ id: 'd1', text: 'one' });
    await online.collection('todos').save({ id: 'd2', text: 'two' });
    await waitConverged(server.url, [online], { namespace });
    await closeClient(online);

    // Offline, so everything below waits in the queue together, in order.
    const offline = await openClient(await unreachableUrl(), options);
    const todos = offline.collection('todos');
    await todos.update('d1', { blob: BIG }); // too large: refused
    await todos.delete('d1'); // behind it, same document
    await todos.save({ id: 'd1', text: 'one, again' }); // and again
    await todos.update('d2', { text: 'two, edited' }); // another document
    await todos.save({ id: 'big', blob: BIG }); // too large: refused
    await todos.save({ id: 'd3', text: 'three' });
    expect(await offline.pendingCount()).toBe(6);
    await closeClient(offline);

    const client = await openClient(server, options);
    const rejected = record(client, 'rejected');
    const final = await waitConverged(server.url, [client], { namespace });

    expect(final).toEqual({ d1: { text: 'one, again' }, d2: { text: 'two, edited' }, d3: { text: 'three' } });
    expect(rejected.map(({ id, action, code }) => ({ id, action, code })).sort((x, y) => x.id.localeCompare(y.id))).toEqual([
      { id: 'big', action: 'upsert', code: 'too_large' },
      { id: 'd1', action: 'update', code: 'too_large' },
    ]);
    expect(new Set(rejected.map((event) => event.opId)).size).toBe(2);
    expect(await client.pendingCount()).toBe(0);
    expect(await client.failed()).toEqual([]);

    // On the server: d1 went through the delete and the new save, never the
    // refused edit; the refused new document does not exist.
    const d1 = (await history(server.url, 'd1', 'todos', namespace)) ?? [];
    expectWholeHistory(d1, 'd1');
    expect(d1.map((entry) => entry.op)).toEqual(['insert', 'delete', 'insert']);
    expect(JSON.stringify(d1)).not.toContain(BIG);
    expect((await api(server.url).document(namespace, 'todos', 'd1'))?.version).toBe(3);
    expect((await api(server.url).document(namespace, 'todos', 'd2'))?.version).toBe(2);
    expect(await history(server.url, 'big', 'todos', namespace)).toBeUndefined();

    // Online too: a refused edit, then the next edits of the same and
    // another document go through.
    const more = record(client, 'rejected');
    await client.collection('todos').update('d3', { blob: BIG });
    await waitFor(() => more.length === 1, 10_000, 'the online edit to be rejected');
    expect(more[0]).toMatchObject({ id: 'd3', action: 'update', code: 'too_large' });
    await client.collection('todos').update('d3', { text: 'three, edited' });
    await client.collection('todos').save({ id: 'd4', text: 'four' });
    const after = await waitConverged(server.url, [client], { namespace });
    expect(after['d3']).toEqual({ text: 'three, edited' });
    expect(after['d4']).toEqual({ text: 'four' });
    expect((await api(server.url).document(namespace, 'todos', 'd3'))?.version).toBe(2);
  });
});

describe('a write larger than the server accepts in one message', () => {
  it('is rejected with too_large instead of closing the connection again and again, and the writes behind it are applied', async () => {
    // The message limit below the document limit: the WebSocket frame
    // carrying the write is refused whole (close 1009).
    const small = await startServer({ config: '[limits]\nrequest_bytes_max = 4096\n' });
    try {
      const spy = spyingWebSocket();
      const client = await openClient(small, { WebSocket: spy.WebSocket });
      const rejected = record(client, 'rejected');
      await waitFor(() => client.connectionState === 'connected', 10_000, 'the client to connect');
      const todos = client.collection('todos');
      await todos.save({ id: 'huge', blob: 'z'.repeat(8_000) });
      for (let i = 0; i < 5; i++) await todos.save({ id: `after-${i}`, n: i });

      const final = await waitConverged(small.url, [client], { timeoutMs: 20_000 });
      expect(final).toEqual(Object.fromEntries([0, 1, 2, 3, 4].map((i) => [`after-${i}`, { n: i }])));
      expect(rejected.map(({ id, code }) => ({ id, code }))).toEqual([{ id: 'huge', code: 'too_large' }]);
      // Refused once, not retried in a loop of reconnects.
      await waitFor(() => client.connectionState === 'connected', 10_000, 'the client to be connected');
      expect(spy.opened(), 'WebSocket connections opened').toBeLessThanOrEqual(2);
    } finally {
      await small.stop();
    }
  });
});

