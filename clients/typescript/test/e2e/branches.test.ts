// A branch of a document through the TypeScript client: the branch address
// `notes@draft` is a collection like any other, the document's collection
// does not see the branch's edits, and a merge brings them in.

import { describe, expect, it } from 'vitest';

import { api } from '../support/server.js';
import { localDocs, openClient, serverDocs, serverForFile, waitConverged, waitFor } from './helpers.js';

const server = serverForFile();
const namespace = 'branches';

describe('a branch of a document', () => {
  it('syncs under its address and reaches the document only when merged', async () => {
    const client = await openClient(server, { namespace, collections: ['notes', 'notes@draft'] });
    const notes = client.collection('notes');
    const draft = client.collection('notes@draft');
    await notes.save({ id: 'n1', title: 'Plan', body: 'one' });
    await waitConverged(server.url, [client], { collection: 'notes', namespace });

    const http = api(server.url);
    const forked = await http.post<{ branch: { forkVersion: number } }>(`/v1/ns/${namespace}/notes/n1/branches`, { name: 'draft' });
    expect(forked.status).toBe(201);
    expect(forked.body.branch.forkVersion).toBe(1);
    await waitFor(async () => (await localDocs(client, 'notes@draft')).n1?.title === 'Plan', 10_000, 'the forked branch on the client');

    await draft.update('n1', { body: 'one, rewritten' });
    await waitConverged(server.url, [client], { collection: 'notes@draft', namespace });
    expect(await serverDocs(server.url, 'notes', namespace)).toEqual({ n1: { title: 'Plan', body: 'one' } });
    expect(await localDocs(client, 'notes')).toEqual({ n1: { title: 'Plan', body: 'one' } });

    const merged = await http.post<{ result: { status: string } }>(`/v1/ns/${namespace}/notes/n1/branches/draft/merge`, {});
    expect(merged.status).toBe(200);
    expect(merged.body.result.status).toBe('success');
    await waitFor(async () => (await localDocs(client, 'notes')).n1?.body === 'one, rewritten', 10_000, 'the merge on the client');
    expect(await waitConverged(server.url, [client], { collection: 'notes', namespace })).toEqual({
      n1: { title: 'Plan', body: 'one, rewritten' },
    });
  });
});
