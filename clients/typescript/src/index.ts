// The package's public surface: `createClient` and the types an app uses,
// the storage adapters, seed 004's bulk sync, and seed 003's interfaces
// (implemented by the client, the queue and the diff functions).

import { applyMergePatch, diffMergePatch, type JsonObject } from './core/json.js';
import type { IDiffCalculator } from './types.js';

export { createClient, SyncClient, Collection, Query, SyncArgumentError, BACKGROUND_SYNC_TAG } from './client.js';
export { bulkSync, type BulkOperation, type BulkSyncOptions, type BulkSyncResult } from './bulk-sync.js';
export { MemoryStorage } from './storage/memory.js';
export { IndexedDbStorage } from './storage/indexeddb.js';
export { StorageError, type Storage, type StorageTx, type TransactionOptions } from './storage/storage.js';
export { HttpError, NetworkError, type TokenSource } from './transport/http.js';
export type { SocketLike, WebSocketConstructor } from './transport/websocket.js';
export type { QueueEntry } from './core/queue.js';
export type { ServerDoc } from './core/view.js';
export type { WhereOp, Direction, Condition, QuerySpec } from './core/query.js';
export type { Action, Priority, OpStatus, Strategy, ErrorCode, ConflictData, ConflictRecord, Change } from './core/protocol.js';
export type * from './types.js';

/** Seed 003's diff calculator: merge patches, the protocol's delta format. */
export const diffCalculator: IDiffCalculator = {
  diff: (before: JsonObject, after: JsonObject) => diffMergePatch(before, after),
  apply: (target: JsonObject, patch: JsonObject) => applyMergePatch(target, patch),
};
