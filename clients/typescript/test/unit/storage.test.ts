// Transactional storage (src/storage/memory.ts and src/storage/indexeddb.ts on fake-indexeddb): all or nothing, queue order, seqs, settings.

import 'fake-indexeddb/auto';

import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';

import type { QueueEntry } from '../../src/core/queue.js';
import type { ServerDoc } from '../../src/core/view.js';
import { IndexedDbStorage } from '../../src/storage/indexeddb.js';
import { MemoryStorage } from '../../src/storage/memory.js';
import { StorageError, type Storage, type StorageTx } from '../../src/storage/storage.js';

let databases = 0;
const kinds: [string, () => Promise<Storage>][] = [
  ['MemoryStorage', async () => new MemoryStorage()],
  ['IndexedDbStorage', () => IndexedDbStorage.open(`storage-test-${databases++}`)],
];

function newEntry(id: string, n = 0, collection = 'todos'): Omit<QueueEntry, 'seq'> {
  return {
    opId: `op-${collection}-${id}-${n}`,
    collection,
    id,
    action: 'update',
    data: { n },
    timestamp: '2024-01-01T00:00:00.000Z',
    sent: false,
    attempts: 0,
    nextAttemptAt: 0,
    failed: false,
  };
}

const doc = (data: ServerDoc['data'], version: number): ServerDoc => ({ data, version, deleted: false });

for (const [name, open] of kinds) {
  describe(name, () => {
    const opened: Storage[] = [];
    const fresh = async () => {
      const storage = await open();
      opened.push(storage);
      return storage;
    };
    afterEach(() => {
      for (const storage of opened.splice(0)) storage.close();
    });

    it('stores documents by collection and id, and clears one collection only', async () => {
      const storage = await fresh();
      await storage.transaction('readwrite', async (tx) => {
        await tx.putDoc('todos', 'a', doc({ x: 1 }, 1));
        await tx.putDoc('todos', 'b', { data: {}, version: 4, deleted: true });
        await tx.putDoc('todos2', 'a', doc({ y: 1 }, 2));
        await tx.putDoc('notes', 'a', doc({ z: 1 }, 3));
      });
      expect(await storage.transaction('readonly', (tx) => tx.getDoc('todos', 'a'))).toEqual(doc({ x: 1 }, 1));
      expect(await storage.transaction('readonly', (tx) => tx.getDoc('todos', 'zz'))).toBeUndefined();
      expect(await storage.loadDocs('todos')).toEqual(new Map([['a', doc({ x: 1 }, 1)], ['b', { data: {}, version: 4, deleted: true }]]));
      await storage.transaction('readwrite', async (tx) => {
        await tx.clearCollection('todos');
        expect(await tx.getDoc('todos', 'a')).toBeUndefined();
        await tx.putDoc('todos', 'c', doc({ c: 1 }, 1));
      });
      expect(await storage.loadDocs('todos')).toEqual(new Map([['c', doc({ c: 1 }, 1)]]));
      expect(await storage.loadDocs('todos2')).toEqual(new Map([['a', doc({ y: 1 }, 2)]]));
      expect(await storage.loadDocs('notes')).toEqual(new Map([['a', doc({ z: 1 }, 3)]]));
      expect(await storage.loadDocs('nothing')).toEqual(new Map());
    });

    it('stores nothing of a transaction whose steps throw', async () => {
      const storage = await fresh();
      const kept = await storage.transaction('readwrite', async (tx) => {
        await tx.putDoc('todos', 'a', doc({ x: 1 }, 1));
        await tx.putMeta('cursor', 'c1');
        return [await tx.addEntry(newEntry('a', 1)), await tx.addEntry(newEntry('b', 1))];
      });
      const before = { docs: await storage.loadDocs('todos'), queue: await storage.loadQueue() };
      const boom = new Error('boom');
      const failing = storage.transaction('readwrite', async (tx) => {
        await tx.putDoc('todos', 'a', doc({ x: 2 }, 2));
        await tx.putDoc('todos', 'new', doc({}, 1));
        await tx.clearCollection('todos');
        await tx.addEntry(newEntry('a', 2));
        await tx.putEntry({ ...newEntry('b', 9), seq: kept[1]!, sent: true });
        await tx.removeEntry(kept[0]!);
        await tx.putMeta('cursor', 'c2');
        await tx.putMeta('other', { a: 1 });
        throw boom;
      });
      const error: unknown = await failing.then(() => undefined, (caught: unknown) => caught);
      expect(error === boom || (error instanceof StorageError && error.cause === boom), String(error)).toBe(true);
      expect(await storage.loadDocs('todos')).toEqual(before.docs);
      expect(await storage.loadQueue()).toEqual(before.queue);
      expect(await storage.transaction('readonly', (tx) => tx.getMeta('cursor'))).toBe('c1');
      expect(await storage.transaction('readonly', (tx) => tx.getMeta('other'))).toBeUndefined();
      // And the storage goes on working.
      await storage.transaction('readwrite', (tx) => tx.putMeta('cursor', 'c3'));
      expect(await storage.transaction('readonly', (tx) => tx.getMeta('cursor'))).toBe('c3');
    });

    it('stores nothing of a transaction whose steps throw, whatever the steps (property)', async () => {
      const step = fc.oneof(
        fc.record({ kind: fc.constant('doc' as const), id: fc.constantFrom('a', 'b'), v: fc.nat(9) }),
        fc.record({ kind: fc.constant('add' as const), id: fc.constantFrom('a', 'b') }),
        fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }),
        fc.record({ kind: fc.constant('meta' as const), v: fc.option(fc.nat(9), { nil: undefined }) }),
        fc.record({ kind: fc.constant('clear' as const) }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(fc.tuple(fc.array(step, { maxLength: 5 }), fc.boolean()), { maxLength: 5 }), async (transactions) => {
          const storage = await fresh();
          for (const [steps, fail] of transactions) {
            const before = JSON.stringify([[...(await storage.loadDocs('todos'))], await storage.loadQueue(), await storage.transaction('readonly', (tx) => tx.getMeta('m'))]);
            const run = storage.transaction('readwrite', async (tx) => {
              for (const s of steps) {
                if (s.kind === 'doc') await tx.putDoc('todos', s.id, doc({ v: s.v }, s.v + 1));
                else if (s.kind === 'add') await tx.addEntry(newEntry(s.id));
                else if (s.kind === 'remove') {
                  const queue = [...(await tx.queueOf('todos', 'a')), ...(await tx.queueOf('todos', 'b'))];
                  const target = queue[s.pick % Math.max(1, queue.length)];
                  if (target) await tx.removeEntry(target.seq);
                } else if (s.kind === 'meta') await tx.putMeta('m', s.v);
                else await tx.clearCollection('todos');
              }
              if (fail) throw new Error('undo');
            });
            if (fail) {
              await expect(run).rejects.toThrow();
              const after = JSON.stringify([[...(await storage.loadDocs('todos'))], await storage.loadQueue(), await storage.transaction('readonly', (tx) => tx.getMeta('m'))]);
              expect(after).toBe(before);
            } else {
              await run;
            }
          }
        }),
        { numRuns: name === 'MemoryStorage' ? 200 : 60 },
      );
    });

    it('gives every new entry a larger seq than every earlier one, failed transactions included', async () => {
      const storage = await fresh();
      const seqs: number[] = [];
      seqs.push(...(await storage.transaction('readwrite', async (tx) => [await tx.addEntry(newEntry('a')), await tx.addEntry(newEntry('b'))])));
      await storage.transaction('readwrite', async (tx) => {
        await tx.addEntry(newEntry('a', 5));
        throw new Error('undo');
      }).catch(() => undefined);
      seqs.push(await storage.transaction('readwrite', (tx) => tx.addEntry(newEntry('a', 1))));
      await storage.transaction('readwrite', (tx) => tx.removeEntry(seqs[seqs.length - 1]!));
      seqs.push(await storage.transaction('readwrite', (tx) => tx.addEntry(newEntry('c'))));
      for (let i = 1; i < seqs.length; i++) expect(seqs[i]!, JSON.stringify(seqs)).toBeGreaterThan(seqs[i - 1]!);
      expect((await storage.loadQueue()).map((e) => e.seq)).toEqual([seqs[0], seqs[1], seqs[3]]);
    });

    it('returns a document\'s queue oldest first, with the transaction\'s own writes', async () => {
      const storage = await fresh();
      const [a1, , a2, , a3] = await storage.transaction('readwrite', async (tx) => [
        await tx.addEntry(newEntry('a', 1)),
        await tx.addEntry(newEntry('b', 1)),
        await tx.addEntry(newEntry('a', 2)),
        await tx.addEntry(newEntry('a', 1, 'notes')),
        await tx.addEntry(newEntry('a', 3)),
      ]);
      const queue = await storage.transaction('readonly', (tx) => tx.queueOf('todos', 'a'));
      expect(queue.map((e) => [e.seq, e.data])).toEqual([[a1, { n: 1 }], [a2, { n: 2 }], [a3, { n: 3 }]]);
      await storage.transaction('readwrite', async (tx) => {
        await tx.removeEntry(a2!);
        const a4 = await tx.addEntry(newEntry('a', 4));
        await tx.putEntry({ ...newEntry('a', 10), seq: a1!, sent: true });
        const seen = await tx.queueOf('todos', 'a');
        expect(seen.map((e) => [e.seq, e.data, e.sent])).toEqual([[a1, { n: 10 }, true], [a3, { n: 3 }, false], [a4, { n: 4 }, false]]);
        expect(await tx.getEntry(a2!)).toBeUndefined();
        expect((await tx.getEntry(a1!))?.data).toEqual({ n: 10 });
      });
      expect((await storage.transaction('readonly', (tx) => tx.queueOf('todos', 'a'))).map((e) => e.data)).toEqual([{ n: 10 }, { n: 3 }, { n: 4 }]);
      expect((await storage.transaction('readonly', (tx) => tx.queueOf('notes', 'a'))).map((e) => e.data)).toEqual([{ n: 1 }]);
      expect(await storage.transaction('readonly', (tx) => tx.queueOf('todos', 'zz'))).toEqual([]);
      const all = await storage.loadQueue();
      expect(all.map((e) => e.seq)).toEqual([...all.map((e) => e.seq)].sort((x, y) => x - y));
      expect(all).toHaveLength(5);
    });

    it('keeps settings, and forgets one set to undefined', async () => {
      const storage = await fresh();
      await storage.transaction('readwrite', async (tx) => {
        await tx.putMeta('deviceId', 'dev-1');
        await tx.putMeta('cursors', { todos: 'c-9' });
        expect(await tx.getMeta('deviceId')).toBe('dev-1');
      });
      expect(await storage.transaction('readonly', (tx) => tx.getMeta<{ todos: string }>('cursors'))).toEqual({ todos: 'c-9' });
      await storage.transaction('readwrite', (tx) => tx.putMeta('deviceId', undefined));
      expect(await storage.transaction('readonly', (tx) => tx.getMeta('deviceId'))).toBeUndefined();
      expect(await storage.transaction('readonly', (tx) => tx.getMeta('never'))).toBeUndefined();
    });

    it('stores copies: changing an object after storing it, or what a read gave, changes nothing stored', async () => {
      const storage = await fresh();
      const data = { o: { n: 1 } };
      const entry = newEntry('a');
      const seq = await storage.transaction('readwrite', async (tx) => {
        await tx.putDoc('todos', 'a', doc(data, 1));
        return tx.addEntry(entry);
      });
      data.o.n = 2;
      (entry.data as { n: number }).n = 7;
      const read = await storage.transaction('readonly', (tx) => tx.getDoc('todos', 'a'));
      expect(read?.data).toEqual({ o: { n: 1 } });
      (read!.data['o'] as { n: number }).n = 3;
      expect((await storage.loadDocs('todos')).get('a')?.data).toEqual({ o: { n: 1 } });
      expect((await storage.transaction('readonly', (tx) => tx.getEntry(seq)))?.data).toEqual({ n: 0 });
    });

    it('runs transactions one at a time', async () => {
      const storage = await fresh();
      await Promise.all(
        Array.from({ length: 12 }, () =>
          storage.transaction('readwrite', async (tx) => {
            const count = (await tx.getMeta<number>('count')) ?? 0;
            await tx.putMeta('count', count + 1);
          }),
        ),
      );
      expect(await storage.transaction('readonly', (tx) => tx.getMeta('count'))).toBe(12);
    });

    it('runs transactions with relaxed durability like any other', async () => {
      const storage = await fresh();
      await storage.transaction('readwrite', (tx) => tx.putDoc('todos', 'a', doc({}, 1)), { relaxed: true });
      expect((await storage.loadDocs('todos')).get('a')).toEqual(doc({}, 1));
    });

    // The memory storage keeps IndexedDB's contract here too, so code tested on it
    // does not write where a browser would refuse.
    it('refuses every write in a read-only transaction', async () => {
      const storage = await fresh();
      const seq = await storage.transaction('readwrite', (tx) => tx.addEntry(newEntry('a')));
      const writes: [string, (tx: StorageTx) => Promise<unknown>][] = [
        ['putDoc', (tx) => tx.putDoc('todos', 'a', doc({}, 1))],
        ['clearCollection', (tx) => tx.clearCollection('todos')],
        ['addEntry', (tx) => tx.addEntry(newEntry('b'))],
        ['putEntry', (tx) => tx.putEntry({ ...newEntry('a', 5), seq })],
        ['removeEntry', (tx) => tx.removeEntry(seq)],
        ['putMeta', (tx) => tx.putMeta('x', 1)],
      ];
      for (const [write, step] of writes) {
        await expect(storage.transaction('readonly', step), write).rejects.toBeInstanceOf(StorageError);
      }
      expect(await storage.transaction('readonly', (tx) => tx.getMeta('x'))).toBeUndefined();
      expect(await storage.loadDocs('todos')).toEqual(new Map());
      expect((await storage.loadQueue()).map((e) => [e.seq, e.data])).toEqual([[seq, { n: 0 }]]);
    });
  });
}

describe('IndexedDbStorage across opens', () => {
  it('keeps what was stored when the database is opened again', async () => {
    const first = await IndexedDbStorage.open('storage-test-reopen');
    await first.transaction('readwrite', async (tx) => {
      await tx.putDoc('todos', 'a', doc({ x: 1 }, 1));
      await tx.addEntry(newEntry('a'));
      await tx.putMeta('deviceId', 'dev-1');
    });
    first.close();
    const second = await IndexedDbStorage.open('storage-test-reopen');
    expect(await second.loadDocs('todos')).toEqual(new Map([['a', doc({ x: 1 }, 1)]]));
    expect((await second.loadQueue()).map((e) => e.opId)).toEqual(['op-todos-a-0']);
    expect(await second.transaction('readonly', (tx) => tx.getMeta('deviceId'))).toBe('dev-1');
    expect(second.shared).toBe(true);
    expect(second.name).toBe('storage-test-reopen');
    second.close();
  });
});
