// The package's public types: options, documents and snapshots, events,
// conflict handling, and the interfaces of seed 003 that the package's own
// parts implement.

import type { JsonObject, JsonValue } from './core/json.js';
import type { QueueEntry } from './core/queue.js';
import type { ConflictData, ErrorCode, Priority, Strategy } from './core/protocol.js';
import type { Storage } from './storage/storage.js';
import type { TokenSource } from './transport/http.js';
import type { WebSocketConstructor } from './transport/websocket.js';

export type { JsonObject, JsonValue };

/** A document as the application sees it: its data with its `id` as a field. */
export type Doc<T extends JsonObject = JsonObject> = T & { id: string };

/** What the connection is doing (seed 001's states). */
export type ConnectionState = 'disconnected' | 'connecting' | 'connected' | 'reconnecting' | 'error';

/** A live query's result. */
export interface Snapshot<T extends JsonObject = JsonObject> {
  /** The matching documents, ordered. */
  docs: Doc<T>[];
  /** Whether a document of the result has edits the server has not acknowledged yet. */
  hasPendingWrites: boolean;
  /** Whether the result comes from the local copy only (not yet caught up with the server in this session). */
  fromCache: boolean;
}

/** A time source (ms since the epoch); injected for tests. */
export interface Clock {
  now(): number;
}

/** The options of `createClient`. */
export interface ClientOptions {
  /** The server, e.g. `http://127.0.0.1:7700`. */
  serverUrl: string;
  /** The WebSocket URL; default: `serverUrl` with ws(s) and `/ws`. */
  websocketUrl?: string;
  /** A token or a function giving the current one (called again on every reconnect). */
  token?: TokenSource;
  /** The collections this client syncs (it may read and write only these). */
  collections: string[];
  /** The namespace; default `default`. */
  namespace?: string;
  /** `indexeddb` (default in browsers), `memory` (default elsewhere), or a `Storage` of your own. */
  storage?: 'indexeddb' | 'memory' | Storage;
  /** The IndexedDB database name; default derived from the server, namespace and collections. */
  databaseName?: string;
  /** `false`: HTTP only (long-poll). Default `true`. */
  enableRealtimeSync?: boolean;
  /** The first reconnect's delay ceiling (full jitter, doubling). Default 2000. */
  reconnectDelayMs?: number;
  /** The longest reconnect delay. Default 30000. */
  maxReconnectDelayMs?: number;
  /** Failed WebSocket attempts before the client settles on HTTP polling (trying the socket again each minute). Default 10. */
  maxReconnectAttempts?: number;
  /** A hidden page disconnects after this long; `0` never. Default 300000. */
  backgroundDisconnectMs?: number;
  /** Transient failures before an operation is failed (kept for `retry`/`discard`). Default 10. */
  maxAttempts?: number;
  /** An answer to a write not arriving within this reconnects. Default 15000. */
  requestTimeoutMs?: number;
  /** How long an HTTP long-poll waits for changes, in seconds. Default 25. */
  longPollSecs?: number;
  /** One connection for every tab of the origin (Web Locks + BroadcastChannel) when available. Default `true`. */
  shareConnectionAcrossTabs?: boolean;
  /** The device's name and platform for the device registry, and the most bytes per second the server should send it (`bandwidthLimit`: it paces catch-up and live changes to it). */
  device?: { name?: string; platform?: string; appVersion?: string; bandwidthLimit?: number };
  /** The priority of each collection's writes (`high`, `normal`, `low`; default normal): high ones go first, and low ones wait while the link is metered. */
  priorities?: Record<string, Priority>;
  /** Start with the link marked metered or slow: writes of low priority stay queued until `setMetered(false)`. Default `false`. */
  metered?: boolean;
  /** A WebSocket implementation where there is no global one (Node 20: the `ws` package). */
  WebSocket?: WebSocketConstructor;
  /** A fetch implementation; default the global one. */
  fetch?: typeof fetch;
  /** The clock; default `Date`. */
  clock?: Clock;
  /** Random numbers in [0, 1) for ids and jitter; default `Math.random` (ids use `crypto` when present). */
  random?: () => number;
  /** Where diagnostics go; default `console`. */
  logger?: Pick<Console, 'debug' | 'warn'>;
}

/** A change made by someone else, as applied to the local copy. */
export interface ChangeEvent {
  collection: string;
  id: string;
  /** The document after the change; absent for a delete. */
  data?: JsonObject;
  version: number;
}

/** A conflict the server left pending (strategy `manual`). */
export interface ConflictInfo {
  conflictId: string;
  namespace: string;
  collection: string;
  id: string;
  conflictData: ConflictData;
}

/** An automatic or handled resolution. */
export interface ConflictResolvedEvent {
  collection: string;
  id: string;
  strategy?: Strategy;
}

/** An operation the server refused for good; it left the queue. */
export interface RejectedEvent {
  opId: string;
  collection: string;
  id: string;
  action: string;
  code: ErrorCode;
  message: string;
}

/** Something went wrong that the application may want to show. */
export interface ErrorEvent {
  message: string;
  code?: ErrorCode;
  cause?: unknown;
}

/** Every event and its payload. */
export interface ClientEvents {
  stateChanged: ConnectionState;
  connected: { collections: string[] };
  disconnected: undefined;
  insert: ChangeEvent;
  update: ChangeEvent;
  delete: ChangeEvent;
  conflict: ConflictInfo;
  conflictResolved: ConflictResolvedEvent;
  rejected: RejectedEvent;
  error: ErrorEvent;
}

/** What an `onConflict` handler answers: how to resolve, or `undefined` to leave it pending. */
export interface ConflictResolution {
  strategy: 'server_wins' | 'client_wins' | 'merge' | 'manual';
  /** The whole document, for `manual`. */
  resolvedData?: JsonObject;
}

/** Resolves a pending conflict. */
export type ConflictHandler = (conflict: ConflictInfo) => ConflictResolution | undefined | Promise<ConflictResolution | undefined>;

/** A queued operation as `failed()` lists it. */
export type FailedOperation = Pick<QueueEntry, 'opId' | 'collection' | 'id' | 'action' | 'attempts' | 'timestamp'> & {
  data?: JsonObject;
  reason: string;
};

// ---- Seed 003's interfaces ----

/** An entity that syncs: an id and, as the server keeps them, a version and update time. */
export interface ISyncEntity {
  id: string;
  version?: number;
  updatedAt?: string;
  [field: string]: JsonValue | undefined;
}

/** A create, update or delete of one entity. */
export interface ISyncOperation {
  opId: string;
  action: 'create' | 'update' | 'delete' | 'upsert';
  collection: string;
  id: string;
  data?: JsonObject;
  baseVersion?: number;
  timestamp: string;
}

/** The durable queue of operations waiting for the server. */
export interface IOfflineQueue {
  pendingCount(): Promise<number>;
  failed(): Promise<FailedOperation[]>;
  retry(opId: string): Promise<void>;
  discard(opId: string): Promise<void>;
}

/** Differences between two versions of an entity, as a merge patch (only the changed fields, `null` removes). */
export interface IDiffCalculator {
  diff(before: JsonObject, after: JsonObject): JsonObject;
  apply(target: JsonObject, patch: JsonObject): JsonObject;
}

/** Real-time updates of collections. */
export interface IRealTimeSync {
  readonly connectionState: ConnectionState;
  on<K extends keyof ClientEvents>(event: K, listener: (payload: ClientEvents[K]) => void): () => void;
}

/** The synchronisation service as a whole. */
export interface ISyncService extends IOfflineQueue, IRealTimeSync {
  syncNow(): Promise<void>;
  isOnline(): boolean;
  close(): Promise<void>;
}
