// Seed 004's chunked bulk sync for apps that keep their own local database:
// operations go to `/api/{collection}/bulk-sync` in chunks with
// `X-Sync-Chunk: n/total`, and progress is reported after each chunk. A
// chunk that fails is reported and the next one goes on (seed 004's
// manager); every operation carries an opId, so sending again is safe.

import type { JsonObject } from './core/json.js';
import type { ConflictRecord, OpResult } from './core/protocol.js';
import { isValidCollection, uuidv7 } from './ids.js';
import { SyncArgumentError } from './client.js';
import { HttpApi, type TokenSource } from './transport/http.js';

/** One operation as seed 004 writes it. */
export interface BulkOperation {
  action: 'create' | 'update' | 'delete' | 'upsert';
  localId?: string;
  serverId?: string;
  id?: string;
  opId?: string;
  baseVersion?: number;
  timestamp?: string;
  data?: JsonObject;
}

/** Options of `bulkSync`. */
export interface BulkSyncOptions {
  serverUrl: string;
  token?: TokenSource;
  /** Operations per request. Default 50 (seed 004). */
  chunkSize?: number;
  /** Called after every chunk with the chunks done and their number. */
  onProgress?: (progress: { chunk: number; total: number; percent: number }) => void;
  /** The client's last sync point. */
  lastSyncTimestamp?: string;
  deviceId?: string;
  strategy?: string;
  fetch?: typeof fetch;
}

/** What all chunks answered together. */
export interface BulkSyncResult {
  results: OpResult[];
  conflicts: ConflictRecord[];
  errors: { chunk: number; message: string }[];
  syncTimestamp: string | undefined;
}

/** Sends `operations` to the bulk-sync endpoint of `collection` in chunks. */
export async function bulkSync(collection: string, operations: BulkOperation[], options: BulkSyncOptions): Promise<BulkSyncResult> {
  if (!isValidCollection(collection)) throw new SyncArgumentError(`collection name ${JSON.stringify(collection)} is invalid`);
  if (!Array.isArray(operations)) throw new SyncArgumentError('operations must be an array');
  const chunkSize = options.chunkSize ?? 50;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new SyncArgumentError(`chunkSize must be a positive whole number, not ${String(chunkSize)}`);
  const api = new HttpApi(options.serverUrl, options.token, options.fetch);
  const stamped = operations.map((op) => ({
    ...op,
    opId: op.opId ?? uuidv7(Date.now()),
    timestamp: op.timestamp ?? new Date().toISOString(),
  }));
  const total = Math.max(1, Math.ceil(stamped.length / chunkSize));
  const outcome: BulkSyncResult = { results: [], conflicts: [], errors: [], syncTimestamp: undefined };
  for (let chunk = 1; chunk <= total; chunk++) {
    const slice = stamped.slice((chunk - 1) * chunkSize, chunk * chunkSize);
    const body: JsonObject = { operations: slice as unknown as JsonObject[] };
    if (options.lastSyncTimestamp) body['lastSyncTimestamp'] = options.lastSyncTimestamp;
    if (options.deviceId) body['deviceId'] = options.deviceId;
    if (options.strategy) body['strategy'] = options.strategy;
    try {
      const response = await api.bulkSync(collection, body, { number: chunk, total });
      outcome.results.push(...response.results);
      outcome.conflicts.push(...response.conflicts);
      outcome.syncTimestamp = response.syncTimestamp;
    } catch (error) {
      outcome.errors.push({ chunk, message: error instanceof Error ? error.message : String(error) });
    }
    options.onProgress?.({ chunk, total, percent: Math.round((chunk / total) * 100) });
  }
  return outcome;
}
