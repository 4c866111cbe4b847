// This tab's in-memory copy of the durable state: the known server
// documents, the queued operations by document, and the local view of each
// document computed from them (cached, so a live query re-runs over ready
// objects and unchanged documents keep their identity). Storage stays the
// truth: the replica is loaded from it and refreshed after every write.

import { deepEqual } from './core/json.js';
import { docKey, type QueueEntry } from './core/queue.js';
import { localView, type ServerDoc } from './core/view.js';
import type { Doc } from './types.js';

/** The in-memory mirror of one client's storage. */
export class Replica {
  private readonly server = new Map<string, Map<string, ServerDoc>>();
  private readonly pending = new Map<string, QueueEntry[]>();
  private readonly views = new Map<string, Map<string, Doc>>();

  constructor(collections: readonly string[]) {
    for (const collection of collections) {
      this.server.set(collection, new Map());
      this.views.set(collection, new Map());
    }
  }

  /** Whether the replica holds `collection`. */
  has(collection: string): boolean {
    return this.server.has(collection);
  }

  /** Replaces everything known of `collection`'s server state. */
  loadCollection(collection: string, docs: Map<string, ServerDoc>): void {
    const previous = this.server.get(collection) ?? new Map<string, ServerDoc>();
    this.server.set(collection, docs);
    for (const id of new Set([...previous.keys(), ...docs.keys()])) this.refresh(collection, id);
  }

  /** Replaces the whole queue. */
  loadQueue(entries: readonly QueueEntry[]): void {
    const touched = new Set<string>([...this.pending.keys()]);
    this.pending.clear();
    for (const entry of entries) {
      const key = docKey(entry.collection, entry.id);
      const list = this.pending.get(key);
      if (list) list.push(entry);
      else this.pending.set(key, [entry]);
      touched.add(key);
    }
    for (const list of this.pending.values()) list.sort((a, b) => a.seq - b.seq);
    for (const key of touched) {
      const [collection = '', id = ''] = key.split('\u0000');
      this.refresh(collection, id);
    }
  }

  /** The known server state of a document. */
  serverDoc(collection: string, id: string): ServerDoc | undefined {
    return this.server.get(collection)?.get(id);
  }

  /** Sets (or, with `undefined`, forgets) the known server state of a document. */
  setServerDoc(collection: string, id: string, doc: ServerDoc | undefined): boolean {
    const docs = this.server.get(collection);
    if (!docs) return false;
    if (doc) docs.set(id, doc);
    else docs.delete(id);
    return this.refresh(collection, id);
  }

  /** The queued entries of a document, oldest first. */
  entriesOf(collection: string, id: string): readonly QueueEntry[] {
    return this.pending.get(docKey(collection, id)) ?? [];
  }

  /** Sets the queued entries of a document. */
  setEntries(collection: string, id: string, entries: readonly QueueEntry[]): boolean {
    const key = docKey(collection, id);
    if (entries.length === 0) this.pending.delete(key);
    else this.pending.set(key, [...entries].sort((a, b) => a.seq - b.seq));
    return this.refresh(collection, id);
  }

  /** The oldest queued entry of each document, in queue order. */
  heads(): QueueEntry[] {
    const heads: QueueEntry[] = [];
    for (const list of this.pending.values()) if (list[0]) heads.push(list[0]);
    return heads.sort((a, b) => a.seq - b.seq);
  }

  /** Every queued entry, in queue order. */
  entries(): QueueEntry[] {
    return [...this.pending.values()].flat().sort((a, b) => a.seq - b.seq);
  }

  /** How many operations are queued. */
  get queueLength(): number {
    let count = 0;
    for (const list of this.pending.values()) count += list.length;
    return count;
  }

  /** Whether a document has queued edits. */
  hasPending(collection: string, id: string): boolean {
    return this.pending.has(docKey(collection, id));
  }

  /** The local view of one document. */
  view(collection: string, id: string): Doc | undefined {
    return this.views.get(collection)?.get(id);
  }

  /** The local views of a collection. */
  viewsOf(collection: string): Iterable<Doc> {
    return this.views.get(collection)?.values() ?? [];
  }

  /** Recomputes a document's view; `true` when it changed. */
  private refresh(collection: string, id: string): boolean {
    const views = this.views.get(collection);
    if (!views) return false;
    const data = localView(this.server.get(collection)?.get(id), this.entriesOf(collection, id));
    const before = views.get(id);
    if (data === undefined) {
      views.delete(id);
      return before !== undefined;
    }
    const next = { ...data, id } as Doc;
    if (before !== undefined && deepEqual(before, next)) return false;
    // Snapshots hand these objects to the application: frozen, so no caller can change the replica.
    views.set(id, deepFreeze(next));
    return true;
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}
