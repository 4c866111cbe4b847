// Two clients writing concurrently to the same and to different documents end with the server's documents, histories whole.

import { describe, expect, it } from 'vitest';

import { SyncArgumentError } from '../../src/index.js';
import { api } from '../support/server.js';
import { serverForFile, expectWholeHistory, history, openClient, record, sleep, waitConverged } from './helpers.js';

const server = serverForFile();

describe('two clients', () => {
  it('converge on the server documents after concurrent writes', async () => {
    const a = await openClient(server);
    const b = await openClient(server);
    const rejectedA = record(a, 'rejected');
    const rejectedB = record(b, 'rejected');
    const todosA = a.collection('todos');
    const todosB = b.collection('todos');

    // Ten shared documents both will edit, known to both first.
    for (let i = 0; i < 10; i++) {
      await todosA.save({ id: `shared-${i}`, title: `shared ${i}`, a: 0, b: 0, done: false });
    }
    // Five more that will be deleted and brought back by both.
    for (let k = 0; k < 5; k++) await todosA.save({ id: `phoenix-${k}`, life: 1 });
    const start = await waitConverged(server.url, [a, b]);
    expect(Object.keys(start)).toHaveLength(15);

    const ROUNDS = 30;
    const writerA = async () => {
      await todosA.delete('shared-9');
      for (let i = 1; i <= ROUNDS; i++) {
        const shared = `shared-${i % 9}`;
        await todosA.update(shared, { title: `A ${i}`, a: i });
        await todosA.save({ id: `a-${i}`, title: `from A ${i}`, round: i });
        if (i % 10 === 0) await todosA.update(`a-${i - 5}`, { done: true });
        await todosA.save({ id: `both-${i % 5}`, by: 'A', round: i });
        if (i <= 5) await todosA.delete(`phoenix-${i - 1}`);
        if (i > 10 && i <= 15) await todosA.save({ id: `phoenix-${i - 11}`, life: 3, by: 'A' });
        await sleep(i % 3 === 0 ? 15 : 1);
      }
      // The last word on every shared field A owns.
      for (let s = 0; s < 9; s++) await todosA.update(`shared-${s}`, { a: 1000 });
    };
    const writerB = async () => {
      await todosB.update('shared-9', { title: 'B edits a deleted document' });
      for (let i = 1; i <= ROUNDS; i++) {
        const shared = `shared-${(i + 4) % 9}`;
        await todosB.update(shared, { title: `B ${i}`, b: i, done: i % 2 === 0 });
        await todosB.save({ id: `b-${i}`, title: `from B ${i}`, round: i });
        await todosB.save({ id: `both-${i % 5}`, by: 'B', round: i, onlyB: true });
        if (i >= 2 && i <= 6) {
          // B may already know that A deleted it: then there is nothing to update.
          await todosB.update(`phoenix-${i - 2}`, { edited: i }).catch((error: unknown) => {
            if (!(error instanceof SyncArgumentError)) throw error;
          });
        }
        if (i > 5 && i <= 10) await todosB.save({ id: `phoenix-${i - 6}`, life: 2, by: 'B' });
        if (i % 7 === 0) await todosB.delete(`b-${i - 3}`);
        await sleep(i % 4 === 0 ? 15 : 1);
      }
      for (let s = 0; s < 9; s++) await todosB.update(`shared-${s}`, { b: 2000 });
    };
    await Promise.all([writerA(), writerB()]);

    const final = await waitConverged(server.url, [a, b]);

    // Fields only one side changed merged: each side's last value is there.
    for (let s = 0; s < 9; s++) {
      expect(final[`shared-${s}`], `shared-${s}`).toMatchObject({ a: 1000, b: 2000 });
      expect(typeof final[`shared-${s}`]?.['title']).toBe('string');
    }
    // A delete that meets a concurrent edit wins under the default strategy (merge).
    expect(final['shared-9']).toBeUndefined();
    // Each side's own documents, with the edits made to them, and B's deletes.
    for (let i = 1; i <= ROUNDS; i++) {
      expect(final[`a-${i}`]).toEqual({ title: `from A ${i}`, round: i, ...(i % 10 === 5 ? { done: true } : {}) });
      const deletedByB = [4, 11, 18, 25].includes(i);
      expect(final[`b-${i}`]).toEqual(deletedByB ? undefined : { title: `from B ${i}`, round: i });
    }
    for (let k = 0; k < 5; k++) expect(final[`both-${k}`]?.['by']).toMatch(/^[AB]$/);
    // Deleted by A, brought back by B, saved again by A: alive, with one
    // side's save whole (both fields of a save carry the same timestamp).
    for (let k = 0; k < 5; k++) {
      const phoenix = final[`phoenix-${k}`];
      expect([{ life: 2, by: 'B' }, { life: 3, by: 'A' }], `phoenix-${k}: ${JSON.stringify(phoenix)}`).toContainEqual({ life: phoenix?.['life'], by: phoenix?.['by'] });
    }
    expect(Object.keys(final)).toHaveLength(9 + ROUNDS + ROUNDS - 4 + 5 + 5);

    // Every document's history on the server is whole: versions without gap, no opId twice.
    const devices = new Set([a.deviceId, b.deviceId]);
    for (const id of [...Object.keys(final), 'shared-9']) {
      const entries = await history(server.url, id);
      expect(entries, `history of ${id}`).toBeDefined();
      expectWholeHistory(entries ?? [], id);
      for (const entry of entries ?? []) expect(devices.has(entry.deviceId ?? ''), `device of ${id} v${entry.version}`).toBe(true);
    }
    // The writes did meet: the server resolved conflicts between them
    // (merge where an edit carried its base version, last-write-wins for
    // the first two saves of a new id, which have none), none left pending.
    const conflicts = await api(server.url).get<{ conflicts: { strategy: string; status: string; serverId: string }[] }>(
      '/v1/conflicts?collection=todos&limit=1000',
    );
    expect(conflicts.status).toBe(200);
    const onShared = conflicts.body.conflicts.filter((c) => c.serverId.startsWith('shared-'));
    expect(onShared.length).toBeGreaterThan(0);
    for (const conflict of conflicts.body.conflicts) {
      expect(conflict.status).toBe('resolved');
      expect(['merge', 'lww']).toContain(conflict.strategy);
    }
    expect(rejectedA).toEqual([]);
    expect(rejectedB).toEqual([]);
  });
});
