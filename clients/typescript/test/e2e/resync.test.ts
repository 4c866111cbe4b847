// A subscriber too slow for a fast writer (a tiny server send queue) is told to resync, catches up, and ends with every document.

import { describe, expect, it } from 'vitest';

import { api, metric } from '../support/server.js';
import { serverForFile, localDocs, openClient, record, serverDocs, spyingWebSocket, waitConverged, waitFor } from './helpers.js';

// Two frames waiting for a connection are enough to drop its live stream.
const server = serverForFile({ config: '[limits]\nsend_queue_frames_max = 2\n' });

describe('a slow subscriber', () => {
  it('is told to resync and ends with every document equal to the server\'s', async () => {
    const spy = spyingWebSocket();
    const reader = await openClient(server, { WebSocket: spy.WebSocket });
    const disconnects = record(reader, 'disconnected');
    await waitFor(() => reader.connectionState === 'connected', 10_000, 'the reader to connect');
    expect(await metric(server.url, 'sync_resyncs_total')).toBe(0);

    // A writer far faster than one change per frame: bulk requests of 300
    // operations, 1,500 changes over 300 documents (creates, updates, deletes).
    const http = api(server.url);
    const DOCS = 300;
    let op = 0;
    const batch = (make: (i: number) => Record<string, unknown> | undefined) => {
      const operations = [];
      for (let i = 0; i < DOCS; i++) {
        const operation = make(i);
        if (operation) operations.push({ opId: `writer-${op++}`, collection: 'todos', id: `doc-${i}`, ...operation });
      }
      return http.sync({ operations, deviceId: 'fast-writer' });
    };
    await batch((i) => ({ action: 'create', data: { n: i, round: 0, text: `doc ${i}` } }));
    for (let round = 1; round <= 3; round++) {
      await batch((i) => ({ action: 'update', data: { round, [`r${round}`]: i * round } }));
    }
    await batch((i) => (i % 10 === 0 ? { action: 'delete' } : { action: 'update', data: { text: `doc ${i}, last` } }));

    const resyncs = await metric(server.url, 'sync_resyncs_total');
    expect(resyncs, 'the server dropped the reader\'s live stream at least once').toBeGreaterThan(0);

    const final = await waitConverged(server.url, [reader], { timeoutMs: 30_000 });
    // The reader was told, and subscribed again from where it was.
    expect(spy.received.filter((type) => type === 'resync').length).toBeGreaterThan(0);
    expect(spy.sent.filter((type) => type === 'subscribe').length).toBeGreaterThan(1);
    expect(spy.opened()).toBe(1);
    expect(Object.keys(final)).toHaveLength(DOCS - DOCS / 10);
    expect(final['doc-7']).toEqual({ n: 7, round: 3, text: 'doc 7, last', r1: 7, r2: 14, r3: 21 });
    expect(final['doc-10']).toBeUndefined();

    // The reader caught up on the same connection (resync is not a
    // disconnect) and is live again: the next change arrives by itself.
    expect(reader.connectionState).toBe('connected');
    expect(disconnects).toEqual([]);
    await http.sync({ operations: [{ opId: 'writer-after', action: 'create', collection: 'todos', id: 'after', data: { late: true } }] });
    await waitFor(async () => (await reader.collection('todos').get('after')) !== undefined, 10_000, 'a live change after the resync');
    expect(await localDocs(reader)).toEqual(await serverDocs(server.url));
  });
});
