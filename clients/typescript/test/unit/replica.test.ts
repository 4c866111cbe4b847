// The in-memory mirror (src/replica.ts): known documents and queue by document, views computed by localView, cached and frozen.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import type { JsonObject, JsonValue } from '../../src/core/json.js';
import type { QueueEntry } from '../../src/core/queue.js';
import { localView, type ServerDoc } from '../../src/core/view.js';
import { Replica } from '../../src/replica.js';

const live = (data: JsonObject, version: number): ServerDoc => ({ data, version, deleted: false });
const tombstone = (version: number): ServerDoc => ({ data: {}, version, deleted: true });

function queued(seq: number, id: string, action: QueueEntry['action'], data?: JsonObject, collection = 'todos'): QueueEntry {
  const entry: QueueEntry = {
    seq,
    opId: `op-${seq}`,
    collection,
    id,
    action,
    timestamp: '2024-01-01T00:00:00.000Z',
    sent: false,
    attempts: 0,
    nextAttemptAt: 0,
    failed: false,
  };
  if (data !== undefined) entry.data = data;
  return entry;
}

describe('Replica', () => {
  it('shows known documents with their id, hides tombstones, and knows only its collections', () => {
    const replica = new Replica(['todos', 'notes']);
    replica.loadCollection('todos', new Map([['a', live({ text: 'x', id: 'stale' }, 1)], ['b', tombstone(2)]]));
    expect(replica.has('todos')).toBe(true);
    expect(replica.has('other')).toBe(false);
    expect(replica.view('todos', 'a')).toEqual({ text: 'x', id: 'a' });
    expect(replica.view('todos', 'b')).toBeUndefined();
    expect(replica.serverDoc('todos', 'b')).toEqual(tombstone(2));
    expect(replica.view('notes', 'a')).toBeUndefined();
    expect([...replica.viewsOf('todos')]).toEqual([{ text: 'x', id: 'a' }]);
    expect([...replica.viewsOf('other')]).toEqual([]);
    expect(replica.setServerDoc('other', 'a', live({}, 1))).toBe(false);
    expect(replica.view('other', 'a')).toBeUndefined();
  });

  it('says whether a write changed the view, and keeps unchanged views as they were', () => {
    const replica = new Replica(['todos']);
    expect(replica.setServerDoc('todos', 'a', live({ n: 1, o: { p: [1] } }, 1))).toBe(true);
    const first = replica.view('todos', 'a');
    // A newer version with the same data: the same object.
    expect(replica.setServerDoc('todos', 'a', live({ o: { p: [1] }, n: 1 }, 2))).toBe(false);
    expect(replica.view('todos', 'a')).toBe(first);
    expect(replica.setEntries('todos', 'a', [queued(1, 'a', 'update', { n: 1 })])).toBe(false);
    expect(replica.view('todos', 'a')).toBe(first);
    // Another document's change leaves this one alone.
    expect(replica.setServerDoc('todos', 'b', live({ n: 2 }, 1))).toBe(true);
    expect(replica.view('todos', 'a')).toBe(first);
    expect(replica.setEntries('todos', 'a', [queued(1, 'a', 'update', { n: 5 })])).toBe(true);
    expect(replica.view('todos', 'a')).toEqual({ n: 5, o: { p: [1] }, id: 'a' });
    expect(replica.setEntries('todos', 'a', [queued(1, 'a', 'delete')])).toBe(true);
    expect(replica.view('todos', 'a')).toBeUndefined();
    expect(replica.setServerDoc('todos', 'c', undefined)).toBe(false);
    expect(replica.setServerDoc('todos', 'b', undefined)).toBe(true);
    expect(replica.view('todos', 'b')).toBeUndefined();
  });

  it('hands out frozen views, all the way down', () => {
    const replica = new Replica(['todos']);
    replica.setServerDoc('todos', 'a', live({ o: { p: [1, { q: 2 }] } }, 1));
    const view = replica.view('todos', 'a')!;
    const o = view['o'] as { p: [number, { q: number }] };
    expect(Object.isFrozen(view)).toBe(true);
    expect(Object.isFrozen(o)).toBe(true);
    expect(Object.isFrozen(o.p)).toBe(true);
    expect(Object.isFrozen(o.p[1])).toBe(true);
    expect(() => {
      (view as JsonObject)['text'] = 'changed';
    }).toThrow(TypeError);
    expect(() => {
      o.p[1].q = 3;
    }).toThrow(TypeError);
    expect(replica.view('todos', 'a')).toEqual({ o: { p: [1, { q: 2 }] }, id: 'a' });
  });

  it('keeps each document\'s entries in queue order, and the heads and the whole queue too', () => {
    const replica = new Replica(['todos', 'notes']);
    replica.setEntries('todos', 'a', [queued(5, 'a', 'update', { n: 2 }), queued(2, 'a', 'create', { n: 1 })]);
    expect(replica.entriesOf('todos', 'a').map((e) => e.seq)).toEqual([2, 5]);
    expect(replica.view('todos', 'a')).toEqual({ n: 2, id: 'a' });
    replica.setEntries('todos', 'b', [queued(3, 'b', 'upsert', { m: 1 })]);
    replica.setEntries('notes', 'a', [queued(1, 'a', 'upsert', { k: 1 }, 'notes'), queued(4, 'a', 'update', { k: 2 }, 'notes')]);
    expect(replica.heads().map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(replica.entries().map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(replica.queueLength).toBe(5);
    expect(replica.hasPending('todos', 'a')).toBe(true);
    expect(replica.hasPending('todos', 'zz')).toBe(false);
    expect(replica.view('notes', 'a')).toEqual({ k: 2, id: 'a' });
    replica.setEntries('todos', 'a', []);
    expect(replica.hasPending('todos', 'a')).toBe(false);
    expect(replica.entriesOf('todos', 'a')).toEqual([]);
    expect(replica.view('todos', 'a')).toBeUndefined();
    expect(replica.queueLength).toBe(3);
  });

  it('replaces the whole queue or a whole collection, and refreshes what they no longer hold', () => {
    const replica = new Replica(['todos']);
    replica.loadCollection('todos', new Map([['a', live({ n: 1 }, 1)], ['b', live({ n: 2 }, 1)]]));
    replica.loadQueue([queued(3, 'c', 'create', { n: 3 }), queued(1, 'a', 'update', { n: 9 }), queued(2, 'a', 'update', { m: 1 })]);
    expect(replica.view('todos', 'a')).toEqual({ n: 9, m: 1, id: 'a' });
    expect(replica.view('todos', 'c')).toEqual({ n: 3, id: 'c' });
    expect(replica.entriesOf('todos', 'a').map((e) => e.seq)).toEqual([1, 2]);
    replica.loadQueue([queued(4, 'b', 'delete')]);
    expect(replica.view('todos', 'a')).toEqual({ n: 1, id: 'a' });
    expect(replica.view('todos', 'c')).toBeUndefined();
    expect(replica.view('todos', 'b')).toBeUndefined();
    expect(replica.queueLength).toBe(1);
    replica.loadCollection('todos', new Map([['b', live({ n: 5 }, 2)]]));
    expect(replica.view('todos', 'a')).toBeUndefined();
    expect(replica.serverDoc('todos', 'a')).toBeUndefined();
    expect(replica.view('todos', 'b')).toBeUndefined();
    replica.loadQueue([]);
    expect(replica.view('todos', 'b')).toEqual({ n: 5, id: 'b' });
    expect([...replica.viewsOf('todos')]).toHaveLength(1);
  });

  it('shows localView of the known state and the queue, whatever the writes', () => {
    const dataArb: fc.Arbitrary<JsonObject> = fc.dictionary(
      fc.constantFrom('x', 'y', 'id'),
      fc.constantFrom<JsonValue>(null, 1, 'v', { p: 1 }, [1]),
      { maxKeys: 2, noNullPrototype: true },
    );
    const write = fc.oneof(
      fc.record({ kind: fc.constant('server' as const), id: fc.constantFrom('a', 'b'), doc: fc.option(fc.record({ data: dataArb, version: fc.nat(5), deleted: fc.boolean() }), { nil: undefined }) }),
      fc.record({
        kind: fc.constant('entries' as const),
        id: fc.constantFrom('a', 'b'),
        entries: fc.array(fc.record({ seq: fc.nat(20), action: fc.constantFrom<QueueEntry['action']>('create', 'update', 'delete', 'upsert'), data: dataArb }), { maxLength: 3 }),
      }),
    );
    fc.assert(
      fc.property(fc.array(write, { maxLength: 12 }), (writes) => {
        const replica = new Replica(['todos']);
        const server = new Map<string, ServerDoc>();
        const pending = new Map<string, QueueEntry[]>();
        for (const w of writes) {
          let changed: boolean;
          const before = replica.view('todos', w.id);
          if (w.kind === 'server') {
            changed = replica.setServerDoc('todos', w.id, w.doc);
            if (w.doc) server.set(w.id, w.doc);
            else server.delete(w.id);
          } else {
            const entries = w.entries.map((e, i) => queued(e.seq * 10 + i, w.id, e.action, e.action === 'delete' ? undefined : e.data));
            changed = replica.setEntries('todos', w.id, entries);
            pending.set(w.id, [...entries].sort((p, q) => p.seq - q.seq));
          }
          const after = replica.view('todos', w.id);
          expect(changed).toBe(before !== after);
          for (const id of ['a', 'b']) {
            const data = localView(server.get(id), pending.get(id) ?? []);
            expect(replica.view('todos', id)).toEqual(data === undefined ? undefined : { ...data, id });
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
