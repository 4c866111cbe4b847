// Storage on IndexedDB through `idb`: one database per server, namespace
// and name, shared by every tab of the origin. Stores: `docs` (the known
// server state, keyed by [collection, id]), `queue` (the offline queue,
// auto-incremented so entries from any tab keep one order, indexed by
// document) and `meta` (device id, cursors).

import { openDB, type DBSchema, type IDBPDatabase, type IDBPTransaction } from 'idb';
import type { QueueEntry } from '../core/queue.js';
import type { ServerDoc } from '../core/view.js';
import { StorageError, type Storage, type StorageTx } from './storage.js';

interface StoredDoc extends ServerDoc {
  collection: string;
  id: string;
}

interface Schema extends DBSchema {
  docs: { key: [string, string]; value: StoredDoc; indexes: { collection: string } };
  queue: { key: number; value: QueueEntry; indexes: { doc: [string, string] } };
  meta: { key: string; value: { key: string; value: unknown } };
}

type Names = ('docs' | 'queue' | 'meta')[];
const ALL: Names = ['docs', 'queue', 'meta'];

function wrap(error: unknown): StorageError {
  if (error instanceof StorageError) return error;
  const name = error instanceof DOMException || error instanceof Error ? error.name : '';
  const quotaExceeded = name === 'QuotaExceededError';
  const message = quotaExceeded
    ? 'the browser refused to store more data (storage quota exceeded)'
    : `IndexedDB failed: ${error instanceof Error ? error.message : String(error)}`;
  return new StorageError(message, { cause: error, quotaExceeded });
}

/** Storage in an IndexedDB database named `name`. */
export class IndexedDbStorage implements Storage {
  readonly shared = true;
  readonly name: string;
  private constructor(private readonly db: IDBPDatabase<Schema>, name: string) {
    this.name = name;
  }

  /** Opens (creating or upgrading) the database `name`. */
  static async open(name: string): Promise<IndexedDbStorage> {
    if (typeof indexedDB === 'undefined') {
      throw new StorageError('IndexedDB is not available here: use storage "memory"');
    }
    try {
      const db = await openDB<Schema>(name, 1, {
        upgrade(database) {
          const docs = database.createObjectStore('docs', { keyPath: ['collection', 'id'] });
          docs.createIndex('collection', 'collection');
          const queue = database.createObjectStore('queue', { keyPath: 'seq', autoIncrement: true });
          queue.createIndex('doc', ['collection', 'id']);
          database.createObjectStore('meta', { keyPath: 'key' });
        },
      });
      return new IndexedDbStorage(db, name);
    } catch (error) {
      throw wrap(error);
    }
  }

  async transaction<T>(mode: 'readonly' | 'readwrite', steps: (tx: StorageTx) => Promise<T>): Promise<T> {
    let tx: IDBPTransaction<Schema, Names, 'readonly' | 'readwrite'>;
    try {
      tx = this.db.transaction(ALL, mode);
    } catch (error) {
      throw wrap(error);
    }
    const docs = tx.objectStore('docs');
    const queue = tx.objectStore('queue');
    const meta = tx.objectStore('meta');
    const writable = () => {
      if (mode !== 'readwrite') throw new StorageError('a write in a read-only transaction');
    };
    const api: StorageTx = {
      getDoc: async (collection, id) => {
        const stored = await docs.get([collection, id]);
        return stored && { data: stored.data, version: stored.version, deleted: stored.deleted };
      },
      putDoc: async (collection, id, doc) => {
        writable();
        await docs.put!({ collection, id, data: doc.data, version: doc.version, deleted: doc.deleted });
      },
      clearCollection: async (collection) => {
        writable();
        let cursor = await docs.index('collection').openKeyCursor(IDBKeyRange.only(collection));
        while (cursor) {
          await docs.delete!(cursor.primaryKey);
          cursor = await cursor.continue();
        }
      },
      queueOf: async (collection, id) => {
        const found = await queue.index('doc').getAll(IDBKeyRange.only([collection, id]));
        return found.sort((a, b) => a.seq - b.seq);
      },
      getEntry: (seq) => queue.get(seq),
      addEntry: async (entry) => {
        writable();
        return queue.add!(entry as QueueEntry);
      },
      putEntry: async (entry) => {
        writable();
        await queue.put!(entry);
      },
      removeEntry: async (seq) => {
        writable();
        await queue.delete!(seq);
      },
      getMeta: async <V>(key: string) => (await meta.get(key))?.value as V | undefined,
      putMeta: async (key, value) => {
        writable();
        if (value === undefined) await meta.delete!(key);
        else await meta.put!({ key, value });
      },
    };
    try {
      const result = await steps(api);
      await tx.done;
      return result;
    } catch (error) {
      try {
        tx.abort();
      } catch {
        // Already finished or aborted.
      }
      tx.done.catch(() => undefined);
      throw wrap(error);
    }
  }

  async loadDocs(collection: string): Promise<Map<string, ServerDoc>> {
    try {
      const all = await this.db.getAllFromIndex('docs', 'collection', IDBKeyRange.only(collection));
      return new Map(all.map((doc) => [doc.id, { data: doc.data, version: doc.version, deleted: doc.deleted }]));
    } catch (error) {
      throw wrap(error);
    }
  }

  async loadQueue(): Promise<QueueEntry[]> {
    try {
      return await this.db.getAll('queue');
    } catch (error) {
      throw wrap(error);
    }
  }

  close(): void {
    this.db.close();
  }
}
