// Priority against the real server: queued writes go high first (never past an older edit of their document), over WebSocket and over HTTP, and a metered link holds back the collections configured low until the app clears the flag, across a restart of the client too.

import { describe, expect, it } from 'vitest';

import { MemoryStorage } from '../../src/index.js';
import { api } from '../support/server.js';
import { closeClient, openClient, serverForFile, sleep, unreachableUrl, waitFor } from './helpers.js';

const server = serverForFile();

describe.each([
  { transport: 'WebSocket', namespace: 'priority-ws', enableRealtimeSync: true },
  { transport: 'HTTP', namespace: 'priority-http', enableRealtimeSync: false },
])('priority over $transport', ({ namespace, enableRealtimeSync }) => {
  const collections = ['logs', 'payments'];
  const priorities = { logs: 'low', payments: 'high' } as const;

  it('a high write overtakes a backlog of low ones in the queue', async () => {
    const storage = new MemoryStorage();
    const options = { storage, namespace, enableRealtimeSync, collections, priorities, longPollSecs: 2 };
    const offline = await openClient(await unreachableUrl(), options);
    const logs = offline.collection('logs');
    for (let n = 0; n < 150; n++) await logs.save({ id: `log-${String(n).padStart(3, '0')}`, n });
    await offline.collection('payments').save({ id: 'pay-1', amount: 42 });
    // A low document edited once more, urgently: the edit may not go before the document's create.
    await logs.withPriority('high').update('log-149', { flagged: true });
    expect(await offline.pendingCount()).toBe(151);
    await closeClient(offline);

    const online = await openClient(server, options);
    await waitFor(async () => (await online.pendingCount()) === 0, 20_000, 'the queue to drain');
    const http = api(server.url);
    const payments = await http.documents(namespace, 'payments');
    const logged = await http.documents<{ n: number; flagged?: boolean }>(namespace, 'logs');
    expect(payments).toHaveLength(1);
    expect(logged).toHaveLength(150);
    const paySeq = payments[0]?.seq ?? Infinity;
    const overtaken = logged.filter((doc) => doc.seq > paySeq).length;
    // Everything but the urgent document went after the payment.
    expect(overtaken).toBeGreaterThanOrEqual(149);
    expect(logged.find((doc) => doc.id === 'log-149')?.data).toEqual({ n: 149, flagged: true });
  });

  it('a metered link holds back low collections until it is cleared', async () => {
    const storage = new MemoryStorage();
    const options = { storage, namespace: `${namespace}-metered`, enableRealtimeSync, collections, priorities, longPollSecs: 2 };
    const client = await openClient(server, { ...options, metered: true });
    expect(client.isMetered).toBe(true);
    await client.collection('logs').save({ id: 'log-1', n: 1 });
    await client.collection('payments').save({ id: 'pay-1', amount: 42 });
    const http = api(server.url);
    const onServer = async (collection: string) => (await http.documents(options.namespace, collection)).length;
    await waitFor(async () => (await onServer('payments')) === 1, 20_000, 'the payment on the server');
    await client.syncNow();
    await sleep(300);
    expect(await onServer('logs')).toBe(0);
    expect(await client.pendingCount()).toBe(1);
    expect(await client.collection('logs').get('log-1')).toEqual({ id: 'log-1', n: 1 });

    // Held in storage: a restart still on a metered link keeps it back.
    await closeClient(client);
    const again = await openClient(server, { ...options, metered: true });
    await again.syncNow();
    await sleep(300);
    expect(await onServer('logs')).toBe(0);
    expect(await again.pendingCount()).toBe(1);

    // Cleared: it goes at once, without being asked.
    again.setMetered(false);
    await waitFor(async () => (await onServer('logs')) === 1, 20_000, 'the held-back log on the server');
    await waitFor(async () => (await again.pendingCount()) === 0, 20_000, 'an empty queue');
  });
});
