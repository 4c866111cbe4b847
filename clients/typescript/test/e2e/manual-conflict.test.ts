// A conflict left pending by the `manual` strategy reaches onConflict; the handler's resolvedData ends up on the server and in both clients.

import { describe, expect, it } from 'vitest';

import { MemoryStorage, type ConflictInfo } from '../../src/index.js';
import { api } from '../support/server.js';
import { serverForFile, closeClient, history, openClient, record, unreachableUrl, waitConverged, waitFor } from './helpers.js';

const server = serverForFile({ config: '[collections.todos]\nstrategy = "manual"\n' });

interface ConflictRecord {
  id: string;
  serverId: string;
  strategy: string;
  status: string;
  resolvedData: Record<string, unknown> | null;
  conflictData: { clientData: Record<string, unknown>; serverData: Record<string, unknown>; conflictFields: string[] };
  deviceId: string | null;
}

describe.each([
  { transport: 'WebSocket', namespace: 'conflicts-ws', enableRealtimeSync: true },
  { transport: 'HTTP', namespace: 'conflicts-http', enableRealtimeSync: false },
])('a manual conflict met over $transport', ({ namespace, enableRealtimeSync }) => {
  const ns = `namespace=${namespace}`;
  it('is resolved by the onConflict handler, and both clients and the server hold its resolvedData', async () => {
    const storageA = new MemoryStorage();
    const optionsA = { storage: storageA, namespace, enableRealtimeSync, longPollSecs: 5 };
    const a = await openClient(server, optionsA);
    const b = await openClient(server, { namespace });
    await a.collection('todos').save({ id: 'doc', title: 'base', body: 'shared body' });
    await waitConverged(server.url, [a, b], { namespace });
    await closeClient(a);

    // B changes the title (and a field only it touches) online...
    await b.collection('todos').update('doc', { title: 'title by B', priority: 2 });
    await waitFor(async () => (await api(server.url).document(namespace, 'todos', 'doc'))?.version === 2, 10_000, 'B\'s edit on the server');

    // ...while A, offline, changes the title from the same base (version 1).
    const offline = await openClient(await unreachableUrl(), optionsA);
    await offline.collection('todos').update('doc', { title: 'title by A', note: 'only A' });
    expect(await offline.pendingCount()).toBe(1);
    await closeClient(offline);

    // A comes back online with its queue; its handler merges the two titles.
    const resolvedData = { title: 'title by A + title by B', body: 'shared body', priority: 2, note: 'only A' };
    const handled: ConflictInfo[] = [];
    const back = await openClient(server, optionsA);
    const conflicts = record(back, 'conflict');
    const resolved = record(back, 'conflictResolved');
    back.onConflict(async (conflict) => {
      handled.push(conflict);
      return { strategy: 'manual', resolvedData };
    });

    await waitFor(() => resolved.length > 0, 15_000, 'the conflict to be resolved');
    const final = await waitConverged(server.url, [back, b], { namespace });
    expect(final).toEqual({ doc: resolvedData });

    // The event and the handler saw the same pending conflict: the title, both sides.
    expect(conflicts).toHaveLength(1);
    expect(handled).toEqual(conflicts);
    const [conflict] = conflicts;
    expect(conflict).toMatchObject({ namespace, collection: 'todos', id: 'doc' });
    expect(conflict?.conflictData.conflictFields).toEqual(['title']);
    expect(conflict?.conflictData.clientData).toMatchObject({ title: 'title by A' });
    expect(conflict?.conflictData.serverData).toMatchObject({ title: 'title by B' });
    expect(resolved).toEqual([{ collection: 'todos', id: 'doc', strategy: 'manual' }]);

    // The server's record: the conflict is resolved, with the handler's document.
    const listed = await api(server.url).get<{ conflicts: ConflictRecord[] }>(`/v1/conflicts?collection=todos&${ns}`);
    expect(listed.body.conflicts).toHaveLength(1);
    expect(listed.body.conflicts[0]).toMatchObject({
      id: conflict?.conflictId,
      serverId: 'doc',
      strategy: 'manual',
      status: 'resolved',
      resolvedData,
      deviceId: back.deviceId,
    });
    const pending = await api(server.url).get<{ conflicts: ConflictRecord[] }>(`/v1/conflicts?status=pending&${ns}`);
    expect(pending.body.conflicts).toEqual([]);

    // The document's history: A's create, B's edit, A's edit without the
    // conflicting field (manual keeps the server's value), then the resolution.
    const doc = await api(server.url).document(namespace, 'todos', 'doc');
    const entries = (await history(server.url, 'doc', 'todos', namespace)) ?? [];
    expect(entries.map((entry) => entry.version)).toEqual([1, 2, 3, 4]);
    expect(entries[1]?.delta).toEqual({ title: 'title by B', priority: 2 });
    expect(entries[2]?.delta).toEqual({ note: 'only A' });
    expect(doc).toMatchObject({ data: resolvedData, version: 4 });

    // B's live view has it too, and B's next edit applies on top of it.
    expect(await b.collection('todos').get('doc')).toEqual({ id: 'doc', ...resolvedData });
    await b.collection('todos').update('doc', { priority: 3 });
    const after = await waitConverged(server.url, [back, b], { namespace });
    expect(after['doc']).toEqual({ ...resolvedData, priority: 3 });
  });

  it('without a handler stays pending on the server, and the client shows the server\'s values', async () => {
    const storageA = new MemoryStorage();
    const optionsA = { storage: storageA, namespace, enableRealtimeSync, longPollSecs: 5 };
    const a = await openClient(server, optionsA);
    const b = await openClient(server, { namespace });
    await a.collection('todos').save({ id: 'unhandled', title: 'base' });
    await waitConverged(server.url, [a, b], { namespace });
    await closeClient(a);
    await b.collection('todos').update('unhandled', { title: 'B' });
    await waitFor(async () => (await api(server.url).document(namespace, 'todos', 'unhandled'))?.version === 2, 10_000, 'B\'s edit');
    const offline = await openClient(await unreachableUrl(), optionsA);
    await offline.collection('todos').update('unhandled', { title: 'A' });
    await closeClient(offline);

    const back = await openClient(server, optionsA);
    const conflicts = record(back, 'conflict');
    await waitFor(() => conflicts.length > 0, 15_000, 'the conflict event');
    const final = await waitConverged(server.url, [back, b], { namespace });
    expect(final['unhandled']).toEqual({ title: 'B' });
    expect(conflicts[0]?.conflictData.conflictFields).toEqual(['title']);
    const pending = await api(server.url).get<{ conflicts: ConflictRecord[] }>(`/v1/conflicts?status=pending&collection=todos&${ns}`);
    expect(pending.body.conflicts.map((c) => [c.id, c.serverId, c.status])).toEqual([[conflicts[0]?.conflictId, 'unhandled', 'pending']]);
    expect(await back.failed()).toEqual([]);
  });
});
