// Storage on IndexedDB through `idb`: one database per server, namespace
// and name, shared by every tab of the origin. Stores: `docs` (the known
// server state), `queue` (the offline queue, auto-incremented so entries
// from any tab keep one order, indexed by document) and `meta` (device id,
// cursors).
//
// The known documents are kept in buckets, a record per [collection,
// hash(id) % 64] holding that bucket's documents: IndexedDB's cost is per
// record (about 0.1-0.2 ms each in Chromium), so a catch-up page of 1,000
// documents writes 64 records instead of 1,000. A transaction reads each
// bucket once and writes the buckets it changed when its steps are done.

import { openDB, type DBSchema, type IDBPDatabase, type IDBPTransaction } from 'idb';
import type { QueueEntry } from '../core/queue.js';
import type { ServerDoc } from '../core/view.js';
import { StorageError, type Storage, type StorageTx, type TransactionOptions } from './storage.js';

/** The documents of one bucket of a collection. */
interface Bucket {
  collection: string;
  bucket: number;
  docs: Record<string, ServerDoc>;
}

interface Schema extends DBSchema {
  docs: { key: [string, number]; value: Bucket };
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

const BUCKETS = 64;

/** The bucket of a document id (FNV-1a). */
function bucketOf(id: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    hash ^= id.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % BUCKETS;
}

/** Every bucket key of `collection`. */
function collectionRange(collection: string): IDBKeyRange {
  return IDBKeyRange.bound([collection, 0], [collection, BUCKETS]);
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
      const db = await openDB<Schema>(name, 2, {
        upgrade(database, oldVersion, _newVersion, upgrade) {
          if (oldVersion < 1) {
            const queue = database.createObjectStore('queue', { keyPath: 'seq', autoIncrement: true });
            queue.createIndex('doc', ['collection', 'id']);
            database.createObjectStore('meta', { keyPath: 'key' });
          }
          // Version 1 kept a record per document: drop them and the cursors, so the server state is read again.
          if (oldVersion === 1) {
            database.deleteObjectStore('docs');
            void upgrade.objectStore('meta').delete(IDBKeyRange.bound('cursor:', 'cursor:\uffff'));
          }
          database.createObjectStore('docs', { keyPath: ['collection', 'bucket'] });
        },
      });
      return new IndexedDbStorage(db, name);
    } catch (error) {
      throw wrap(error);
    }
  }

  async transaction<T>(mode: 'readonly' | 'readwrite', steps: (tx: StorageTx) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    let tx: IDBPTransaction<Schema, Names, 'readonly' | 'readwrite'>;
    try {
      tx = this.db.transaction(ALL, mode, { durability: options.relaxed ? 'relaxed' : 'strict' });
    } catch (error) {
      throw wrap(error);
    }
    const docs = tx.objectStore('docs');
    const queue = tx.objectStore('queue');
    const meta = tx.objectStore('meta');
    const writable = () => {
      if (mode !== 'readwrite') throw new StorageError('a write in a read-only transaction');
    };
    const buckets = new Map<string, Promise<Bucket>>();
    const dirty = new Set<string>();
    const bucket = (collection: string, id: string): Promise<Bucket> => {
      const number = bucketOf(id);
      const key = `${collection}\u0000${number}`;
      let found = buckets.get(key);
      if (!found) {
        found = docs.get([collection, number]).then((stored) => stored ?? { collection, bucket: number, docs: {} });
        buckets.set(key, found);
      }
      return found;
    };
    const api: StorageTx = {
      getDoc: async (collection, id) => (await bucket(collection, id)).docs[id],
      putDoc: async (collection, id, doc) => {
        writable();
        const found = await bucket(collection, id);
        found.docs[id] = { data: doc.data, version: doc.version, deleted: doc.deleted };
        dirty.add(`${collection}\u0000${found.bucket}`);
      },
      clearCollection: async (collection) => {
        writable();
        await docs.delete!(collectionRange(collection));
        for (const key of [...buckets.keys()]) {
          if (key.startsWith(`${collection}\u0000`)) {
            buckets.delete(key);
            dirty.delete(key);
          }
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
      await Promise.all([...dirty].map(async (key) => docs.put!(await buckets.get(key)!)));
      await tx.done;
      return result;
    } catch (error) {
      try {
        tx.abort();
      } catch {
        // Already finished or aborted.
      }
      tx.done.catch(() => undefined);
      // The steps' own errors pass as they are; IndexedDB's become StorageErrors.
      throw error instanceof DOMException ? wrap(error) : error;
    }
  }

  async loadDocs(collection: string): Promise<Map<string, ServerDoc>> {
    try {
      const all = await this.db.getAll('docs', collectionRange(collection));
      return new Map(all.flatMap((found) => Object.entries(found.docs)));
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
