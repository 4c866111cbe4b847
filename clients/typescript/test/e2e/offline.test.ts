// Edits made while the server is down: 500 of them reach it once it is back, each applied once and coalesced as the queue's rules say; writing meanwhile does not hasten reconnect attempts.

import { describe, expect, it } from 'vitest';

import { api, startServer } from '../support/server.js';
import { serverForFile, expectWholeHistory, history, openClient, record, sleep, spyingWebSocket, unreachableUrl, waitConverged, waitFor } from './helpers.js';

const server = serverForFile();

describe('offline edits', () => {
  it('500 edits made offline are applied once each when the server comes back', async () => {
    const client = await openClient(server);
    const rejected = record(client, 'rejected');
    const todos = client.collection('todos');
    const http = api(server.url);

    // 50 documents the server knows (version 1) before it goes away.
    const PRE = 50;
    for (let i = 0; i < PRE; i++) await todos.save({ id: `pre-${i}`, text: `pre ${i}`, counter: 0 });
    await waitConverged(server.url, [client]);
    for (let i = 0; i < PRE; i++) expect((await http.document('default', 'todos', `pre-${i}`))?.version).toBe(1);

    await server.stop();
    await waitFor(() => client.connectionState !== 'connected', 10_000, 'the client to notice the server is gone');

    // 500 edits, round-robin over 100 documents:
    //  - 50 new documents (generated ids, so `create`s): 45 of them updated
    //    4 times, 5 updated 3 times and then deleted;
    //  - the 50 known ones: 45 updated 5 times, 5 updated 4 times and then deleted.
    const NEW = 50;
    const created: string[] = [];
    let edits = 0;
    for (let i = 0; i < NEW; i++) {
      created.push(await todos.save({ text: `new ${i}`, counter: 0 }));
      edits++;
    }
    for (let round = 1; round <= 5; round++) {
      for (let i = 0; i < NEW; i++) {
        const id = created[i] as string;
        const doomed = i >= 45;
        if (round <= (doomed ? 3 : 4)) {
          await todos.update(id, { counter: round });
          edits++;
        } else if (doomed && round === 4) {
          await todos.delete(id);
          edits++;
        }
      }
      for (let i = 0; i < PRE; i++) {
        const doomed = i < 5;
        if (!doomed || round <= 4) await todos.update(`pre-${i}`, { counter: round });
        else await todos.delete(`pre-${i}`);
        edits++;
      }
    }
    expect(edits).toBe(500);

    // What the queue holds, and so what the server will see. Edits not yet
    // sent are coalesced: the updates of a document created offline merge
    // into its create (one `create` with the final data, so version 1 on
    // the server); the updates of a known document merge into one
    // `update` (version 2); a delete does not merge into an update (one
    // more entry, version 3); and a delete of a document whose only entry
    // is an unsent create cancels it (the server never hears of it).
    expect(await client.pendingCount()).toBe(45 + 45 + 5 * 2);
    expect(await todos.get(created[0] as string)).toEqual({ id: created[0], text: 'new 0', counter: 4 });
    expect(await todos.get('pre-7')).toEqual({ id: 'pre-7', text: 'pre 7', counter: 5 });
    expect(await todos.get('pre-2')).toBeUndefined();

    await server.restart();
    const final = await waitConverged(server.url, [client], { timeoutMs: 45_000 });
    expect(Object.keys(final)).toHaveLength(45 + 45);
    await waitFor(() => client.connectionState === 'connected', 10_000, 'the client to reconnect');

    for (let i = 0; i < NEW; i++) {
      const id = created[i] as string;
      const entries = await history(server.url, id);
      if (i >= 45) {
        // Created and deleted offline: nothing of it was sent.
        expect(entries, `history of new ${i}`).toBeUndefined();
        expect(await http.document('default', 'todos', id)).toBeUndefined();
        continue;
      }
      const doc = await http.document('default', 'todos', id);
      expect(doc, `new ${i}`).toMatchObject({ data: { text: `new ${i}`, counter: 4 }, version: 1, deleted: false });
      expect(entries?.map((entry) => [entry.version, entry.op, entry.delta])).toEqual([[1, 'insert', { text: `new ${i}`, counter: 4 }]]);
      expectWholeHistory(entries ?? [], id);
    }
    for (let i = 0; i < PRE; i++) {
      const id = `pre-${i}`;
      const entries = (await history(server.url, id)) ?? [];
      expectWholeHistory(entries, id);
      const doc = await http.document('default', 'todos', id);
      if (i < 5) {
        expect(doc === undefined || doc.deleted, `${id} is deleted`).toBe(true);
        expect(entries.map((entry) => [entry.version, entry.op, entry.delta])).toEqual([
          [1, 'insert', { text: `pre ${i}`, counter: 0 }],
          [2, 'update', { counter: 4 }],
          [3, 'delete', {}],
        ]);
      } else {
        expect(doc, id).toMatchObject({ data: { text: `pre ${i}`, counter: 5 }, version: 2, deleted: false });
        expect(entries.map((entry) => [entry.version, entry.op, entry.delta])).toEqual([
          [1, 'insert', { text: `pre ${i}`, counter: 0 }],
          [2, 'update', { counter: 5 }],
        ]);
      }
      for (const entry of entries) expect(entry.deviceId).toBe(client.deviceId);
    }
    expect(rejected).toEqual([]);
    expect(await client.failed()).toEqual([]);
  });

  it('a client that never reached the server sends its 500 edits once the server starts', async () => {
    // A server that is down before the client ever sees it.
    const later = await startServer();
    await later.stop();
    try {
      const client = await openClient(later, { namespace: 'never-online' });
      const rejected = record(client, 'rejected');
      const todos = client.collection('todos');
      await waitFor(() => client.connectionState !== 'disconnected', 5_000, 'the client to try to connect');

      // 100 documents, half with generated ids (`create`), half with ids of
      // our own (`upsert`, another device may have made them), each
      // updated 4 times: 500 edits, queued as 100 operations.
      const ids: string[] = [];
      for (let i = 0; i < 100; i++) {
        ids.push(i % 2 === 0 ? await todos.save({ n: i, step: 0 }) : await todos.save({ id: `own-${i}`, n: i, step: 0 }));
      }
      for (let step = 1; step <= 4; step++) {
        for (const id of ids) await todos.update(id, { step, [`s${step}`]: true });
      }
      expect(await client.pendingCount()).toBe(100);

      await later.restart();
      const final = await waitConverged(later.url, [client], { namespace: 'never-online', timeoutMs: 45_000 });
      expect(Object.keys(final)).toHaveLength(100);
      for (const [i, id] of ids.entries()) {
        const expected = { n: i, step: 4, s1: true, s2: true, s3: true, s4: true };
        expect(final[id], id).toEqual(expected);
        // Each document: one insert holding every edit, applied once.
        const entries = (await history(later.url, id, 'todos', 'never-online')) ?? [];
        expect(entries.map((entry) => [entry.version, entry.op, entry.delta]), id).toEqual([[1, 'insert', expected]]);
        expect(entries[0]?.deviceId).toBe(client.deviceId);
      }
      expect(rejected).toEqual([]);
      await waitFor(() => client.connectionState === 'connected', 10_000, 'the client to connect');
    } finally {
      await later.stop();
    }
  });

  it('writes made during an outage do not cut the reconnect backoff short', async () => {
    // Backoff with a fixed jitter (random() = 0.5): attempts at about 0,
    // 0.5 s, 1.5 s, 3.5 s... whatever the application does meanwhile.
    const spy = spyingWebSocket();
    const states: string[] = [];
    const client = await openClient(await unreachableUrl(), {
      WebSocket: spy.WebSocket,
      reconnectDelayMs: 1_000,
      maxReconnectDelayMs: 8_000,
      random: () => 0.5,
    });
    client.on('stateChanged', (state) => void states.push(state));
    const todos = client.collection('todos');
    // A user typing: a write every 20 ms for a little over a second.
    const started = Date.now();
    for (let i = 0; Date.now() - started < 1_200; i++) {
      await todos.save({ id: 'draft', text: `typing ${i}` });
      await sleep(20);
    }
    expect(spy.opened(), 'WebSocket attempts in 1.2 s').toBeLessThanOrEqual(3);
    expect(states, 'the client did not give up on the WebSocket').not.toContain('error');
  });
});
