// A client without real time (HTTP push and long-poll only) and a WebSocket client sync both ways and converge.

import { describe, expect, it } from 'vitest';

import { metric } from '../support/server.js';
import { serverForFile, openClient, record, spyingWebSocket, waitConverged, waitFor } from './helpers.js';

const server = serverForFile();

describe('HTTP long-poll', () => {
  it('syncs both ways with a WebSocket client', async () => {
    const spy = spyingWebSocket();
    // A long wait: changes must arrive because the poll returns early, not because it times out.
    const polling = await openClient(server, { enableRealtimeSync: false, longPollSecs: 20, WebSocket: spy.WebSocket });
    const socket = await openClient(server);
    const updates = record(polling, 'insert');
    await waitFor(() => socket.connectionState === 'connected', 10_000, 'the WebSocket client to connect');

    const fromPolling = polling.collection('todos');
    const fromSocket = socket.collection('todos');
    for (let i = 0; i < 20; i++) {
      await fromPolling.save({ id: `p-${i}`, text: `polling ${i}`, done: false });
      await fromSocket.save({ id: `s-${i}`, text: `socket ${i}`, done: false });
    }
    await waitConverged(server.url, [polling, socket]);

    // Each edits the other's documents, and both edit the same ones (different fields).
    for (let i = 0; i < 20; i++) {
      await fromPolling.update(`s-${i}`, { done: true });
      await fromSocket.update(`p-${i}`, { done: true });
      if (i % 4 === 0) {
        await fromPolling.update(`p-${i}`, { text: `polling ${i}, edited` });
        await fromSocket.update(`p-${i}`, { tag: 'both' });
      }
      if (i % 5 === 4) await fromSocket.delete(`p-${i}`);
      if (i % 5 === 3) await fromPolling.delete(`s-${i}`);
    }
    const final = await waitConverged(server.url, [polling, socket]);
    for (let i = 0; i < 20; i++) {
      expect(final[`p-${i}`]).toEqual(
        i % 5 === 4 ? undefined : { text: i % 4 === 0 ? `polling ${i}, edited` : `polling ${i}`, done: true, ...(i % 4 === 0 ? { tag: 'both' } : {}) },
      );
      expect(final[`s-${i}`]).toEqual(i % 5 === 3 ? undefined : { text: `socket ${i}`, done: true });
    }

    // A change made over the socket reaches the poller well before its poll would time out.
    const started = Date.now();
    await fromSocket.save({ id: 'late', text: 'arrives by long-poll' });
    await waitFor(async () => (await fromPolling.get('late')) !== undefined, 10_000, 'the change to reach the poller');
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(updates.some((event) => event.id === 'late')).toBe(true);

    // The poller never opened a WebSocket; the server holds only the other client's.
    expect(spy.opened()).toBe(0);
    expect(polling.connectionState).toBe('connected');
    expect(await metric(server.url, 'sync_connections')).toBe(1);
  });

  it('reports connected once the server answers, not only when the first long-poll returns', async () => {
    const states: string[] = [];
    const polling = await openClient(server, { enableRealtimeSync: false, longPollSecs: 20, namespace: 'quiet' });
    polling.on('stateChanged', (state) => void states.push(state));
    // Nothing changes in this namespace, so the first poll waits its 20 s;
    // the server has been reached all the same (the poll is under way).
    await waitFor(
      () => {
        expect({ state: polling.connectionState, changes: states }).toEqual({ state: 'connected', changes: expect.arrayContaining(['connected']) });
        return true;
      },
      3_000,
      'the HTTP-only client to report connected',
    );
  });
});
