// The device's durable state behind one interface: the server's last known
// documents, the offline queue and a few settings (device id, cursors). A
// write goes through `transaction`, which commits all its steps or none, so
// an optimistic edit and its queued operation are stored together.

import type { QueueEntry } from '../core/queue.js';
import type { ServerDoc } from '../core/view.js';

/** The operations available inside one transaction. */
export interface StorageTx {
  /** The known server state of a document. */
  getDoc(collection: string, id: string): Promise<ServerDoc | undefined>;
  /** Stores the known server state of a document. */
  putDoc(collection: string, id: string, doc: ServerDoc): Promise<void>;
  /** Forgets every known document of a collection (its queue stays). */
  clearCollection(collection: string): Promise<void>;
  /** The queued entries of a document, oldest first. */
  queueOf(collection: string, id: string): Promise<QueueEntry[]>;
  /** One queued entry. */
  getEntry(seq: number): Promise<QueueEntry | undefined>;
  /** Appends an entry; returns its `seq`, larger than every earlier one. */
  addEntry(entry: Omit<QueueEntry, 'seq'>): Promise<number>;
  /** Replaces the entry with `entry.seq`. */
  putEntry(entry: QueueEntry): Promise<void>;
  /** Removes an entry. */
  removeEntry(seq: number): Promise<void>;
  /** A stored setting. */
  getMeta<T = unknown>(key: string): Promise<T | undefined>;
  /** Stores a setting (`undefined` removes it). */
  putMeta(key: string, value: unknown): Promise<void>;
}

/** How a transaction commits. */
export interface TransactionOptions {
  /**
   * The transaction may complete before it reaches the disk (IndexedDB's
   * `relaxed` durability). Only for what can be read again from the server
   * (known documents, cursors, acknowledgements): a local write is always
   * on disk when its transaction completes.
   */
  relaxed?: boolean;
}

/** Durable client state. */
export interface Storage {
  /** Whether other tabs of the origin can share this storage. */
  readonly shared: boolean;
  /** The name the storage is known by (the lock and channel names derive from it). */
  readonly name: string;
  /** Runs `steps` as one transaction: all its writes are stored, or (when it throws) none. */
  transaction<T>(mode: 'readonly' | 'readwrite', steps: (tx: StorageTx) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /** Every known document of a collection. */
  loadDocs(collection: string): Promise<Map<string, ServerDoc>>;
  /** The whole queue, oldest first. */
  loadQueue(): Promise<QueueEntry[]>;
  /** Releases the storage. */
  close(): void;
}

/** A storage failure, such as a full quota; nothing of the failed transaction was stored. */
export class StorageError extends Error {
  override readonly name = 'StorageError';
  /** Whether the browser refused for lack of space. */
  readonly quotaExceeded: boolean;
  constructor(message: string, options: { cause?: unknown; quotaExceeded?: boolean } = {}) {
    super(message, { cause: options.cause });
    this.quotaExceeded = options.quotaExceeded ?? false;
  }
}
