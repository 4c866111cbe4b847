// The server killed (SIGKILL) and restarted while a client pushes many writes: everything converges, no write lost or applied twice.

import { describe, expect, it } from 'vitest';

import { metric } from '../support/server.js';
import { serverForFile, expectWholeHistory, history, openClient, record, sleep, waitConverged, waitFor } from './helpers.js';

// A kill loses what the store had not flushed under the tests' default
// durability (`os`); acknowledged writes must survive it, so: fsync.
const server = serverForFile({ env: { SYNC_DURABILITY: 'fsync' } });

describe('a server restart in the middle of a sync', () => {
  it('loses and doubles nothing: the client converges on the restarted server', async () => {
    const client = await openClient(server);
    // Another device only reads: it must resume from its cursor after the
    // restart and miss nothing.
    const reader = await openClient(server);
    const rejected = record(client, 'rejected');
    const todos = client.collection('todos');
    await waitFor(
      () => client.connectionState === 'connected' && reader.connectionState === 'connected',
      10_000,
      'the clients to connect',
    );

    // 400 documents, each updated once a little later, with a pause now
    // and then so the pushes spread over the outage. Halfway through, the
    // server is killed: the writes before it are acknowledged or in
    // flight, those after it wait in the queue.
    const COUNT = 400;
    const LAG = 10;
    const KILL_AT = 200;
    let killed: Promise<void> | undefined;
    let headAtKill = 0;
    const writer = (async () => {
      for (let i = 0; i < COUNT + LAG; i++) {
        if (i === KILL_AT) {
          headAtKill = await metric(server.url, 'sync_log_head');
          killed = server.kill();
        }
        if (i < COUNT) await todos.save({ id: `w-${i}`, n: i, text: `write ${i}` });
        if (i >= LAG) await todos.update(`w-${i - LAG}`, { updated: true });
        if (i % 20 === 0) await sleep(40);
      }
    })();
    await waitFor(() => killed !== undefined, 20_000, 'the writer to reach the kill');
    await killed;
    const pendingAtKill = await client.pendingCount();
    await sleep(300);
    await server.restart();
    await writer;

    expect(headAtKill, 'the server had part of the writes when it died').toBeGreaterThan(0);
    expect(pendingAtKill, 'operations were waiting when the server died').toBeGreaterThan(0);
    expect(server.output()).toContain('sync-server exited: SIGKILL');

    const final = await waitConverged(server.url, [client, reader], { timeoutMs: 45_000 });
    expect(Object.keys(final)).toHaveLength(COUNT);
    const seen = new Set<string>();
    for (let i = 0; i < COUNT; i++) {
      const id = `w-${i}`;
      expect(final[id], id).toEqual({ n: i, text: `write ${i}`, updated: true });
      const entries = (await history(server.url, id)) ?? [];
      const opIds = expectWholeHistory(entries, id);
      // A create, then the update (or the two as one create, when the
      // update was made before the create went out).
      expect(entries.length, `versions of ${id}`).toBeGreaterThanOrEqual(1);
      expect(entries.length, `versions of ${id}`).toBeLessThanOrEqual(2);
      expect(entries[0]?.op).toBe('insert');
      for (const opId of opIds) {
        expect(seen.has(opId), `opId ${opId} applied once`).toBe(false);
        seen.add(opId);
      }
    }
    expect(await metric(server.url, 'sync_log_head')).toBe(seen.size);
    expect(rejected).toEqual([]);
    expect(await client.failed()).toEqual([]);
    // Both are back on the WebSocket (an outage of a second, reconnect
    // delays of at most 500 ms), not left on the HTTP fallback.
    await waitFor(
      () => {
        expect({ writer: client.connectionState, reader: reader.connectionState }).toEqual({ writer: 'connected', reader: 'connected' });
        return true;
      },
      10_000,
      'the clients to reconnect',
    );
  });
});
