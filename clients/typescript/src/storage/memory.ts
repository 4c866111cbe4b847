// Storage in memory, for Node.js and tests: the same transactional
// contract as IndexedDB (a transaction's writes land together or not at
// all, transactions run one at a time), nothing kept across restarts
// unless the same instance is handed to the next client.

import type { QueueEntry } from '../core/queue.js';
import type { ServerDoc } from '../core/view.js';
import { docKey } from '../core/queue.js';
import { StorageError, type Storage, type StorageTx, type TransactionOptions } from './storage.js';

const DELETED = Symbol('deleted');
type Staged<T> = Map<string, T | typeof DELETED>;

/** Storage kept in memory. Reuse one instance across clients to model a restart that keeps its data. */
export class MemoryStorage implements Storage {
  readonly shared = false;
  readonly name: string;
  private readonly docs = new Map<string, Map<string, ServerDoc>>();
  private readonly queue = new Map<number, QueueEntry>();
  private readonly meta = new Map<string, unknown>();
  private nextSeq = 1;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(name = 'memory') {
    this.name = name;
  }

  transaction<T>(mode: 'readonly' | 'readwrite', steps: (tx: StorageTx) => Promise<T>, _options?: TransactionOptions): Promise<T> {
    const run = this.tail.then(() => this.run(mode, steps));
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async run<T>(mode: 'readonly' | 'readwrite', steps: (tx: StorageTx) => Promise<T>): Promise<T> {
    const writable = () => {
      if (mode !== 'readwrite') throw new StorageError('a write in a read-only transaction');
    };
    const docs: Staged<ServerDoc> = new Map();
    const cleared = new Set<string>();
    const entries: Staged<QueueEntry> = new Map();
    const meta: Staged<unknown> = new Map();
    let nextSeq = this.nextSeq;
    const clone = <V>(value: V): V => structuredClone(value);
    const tx: StorageTx = {
      getDoc: async (collection, id) => {
        const staged = docs.get(docKey(collection, id));
        if (staged !== undefined) return staged === DELETED ? undefined : clone(staged);
        if (cleared.has(collection)) return undefined;
        const stored = this.docs.get(collection)?.get(id);
        return stored && clone(stored);
      },
      putDoc: async (collection, id, doc) => {
        writable();
        docs.set(docKey(collection, id), clone(doc));
      },
      clearCollection: async (collection) => {
        writable();
        cleared.add(collection);
        for (const key of [...docs.keys()]) if (key.startsWith(`${collection}\u0000`)) docs.delete(key);
      },
      queueOf: async (collection, id) => {
        const found = new Map<number, QueueEntry>();
        for (const entry of this.queue.values()) {
          if (entry.collection === collection && entry.id === id) found.set(entry.seq, entry);
        }
        for (const [seq, entry] of entries) {
          if (entry === DELETED) found.delete(Number(seq));
          else if (entry.collection === collection && entry.id === id) found.set(entry.seq, entry);
        }
        return [...found.values()].sort((a, b) => a.seq - b.seq).map(clone);
      },
      getEntry: async (seq) => {
        const staged = entries.get(String(seq));
        if (staged !== undefined) return staged === DELETED ? undefined : clone(staged);
        const stored = this.queue.get(seq);
        return stored && clone(stored);
      },
      addEntry: async (entry) => {
        writable();
        const seq = nextSeq++;
        entries.set(String(seq), { ...clone(entry), seq });
        return seq;
      },
      putEntry: async (entry) => {
        writable();
        entries.set(String(entry.seq), clone(entry));
      },
      removeEntry: async (seq) => {
        writable();
        entries.set(String(seq), DELETED);
      },
      getMeta: async <T>(key: string) => {
        const staged = meta.get(key);
        if (staged !== undefined) return (staged === DELETED ? undefined : clone(staged)) as T | undefined;
        return clone(this.meta.get(key)) as T | undefined;
      },
      putMeta: async (key, value) => {
        writable();
        meta.set(key, value === undefined ? DELETED : clone(value));
      },
    };
    const result = await steps(tx);
    // Commit: every staged write at once.
    for (const collection of cleared) this.docs.delete(collection);
    for (const [key, doc] of docs) {
      const [collection = '', id = ''] = key.split('\u0000');
      let map = this.docs.get(collection);
      if (!map) this.docs.set(collection, (map = new Map()));
      if (doc === DELETED) map.delete(id);
      else map.set(id, doc);
    }
    for (const [seq, entry] of entries) {
      if (entry === DELETED) this.queue.delete(Number(seq));
      else this.queue.set(Number(seq), entry);
    }
    for (const [key, value] of meta) {
      if (value === DELETED) this.meta.delete(key);
      else this.meta.set(key, value);
    }
    this.nextSeq = nextSeq;
    return result;
  }

  async loadDocs(collection: string): Promise<Map<string, ServerDoc>> {
    await this.tail;
    return new Map([...(this.docs.get(collection) ?? new Map<string, ServerDoc>())].map(([id, doc]) => [id, structuredClone(doc)]));
  }

  async loadQueue(): Promise<QueueEntry[]> {
    await this.tail;
    return [...this.queue.values()].sort((a, b) => a.seq - b.seq).map((entry) => structuredClone(entry));
  }

  close(): void {}
}
