// The wire shapes the client reads and writes: operations, changes,
// operation results, conflicts and error bodies, as docs/protocol.md
// describes them. Plain types and a few guards; no I/O.

import { isObject, type JsonObject } from './json.js';

/** What an operation does. */
export type Action = 'create' | 'update' | 'delete' | 'upsert';
/** How the server answered one operation. */
export type OpStatus = 'success' | 'merged' | 'conflict' | 'duplicate' | 'error';
/** A conflict resolution strategy. */
export type Strategy = 'merge' | 'lww' | 'server_wins' | 'client_wins' | 'manual' | 'custom';
/** The protocol's error codes. */
export type ErrorCode =
  | 'invalid_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'too_large'
  | 'rate_limited'
  | 'internal'
  | 'unavailable'
  | 'insufficient_storage'
  | 'cursor_expired'
  | (string & {});

/** An error body: `{"error": {code, message, details?}}` on HTTP, the fields of an `error` message on WebSocket. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  details?: { retryAfterSecs?: number; limit?: number; [key: string]: unknown };
}

/** How urgent an operation is: high ones go first, low ones may wait on a metered link; `normal` when absent. */
export type Priority = 'high' | 'normal' | 'low';

/** An operation as it goes over the wire. */
export interface WireOperation {
  opId: string;
  action: Action;
  collection: string;
  namespace: string;
  id: string;
  baseVersion?: number;
  timestamp: string;
  data?: JsonObject;
  /** Left out when normal. */
  priority?: Priority;
}

/** One entry of the change log, as the change feed and bulk sync return it. */
export interface Change {
  seq: number;
  namespace: string;
  collection: string;
  id: string;
  op: 'insert' | 'update' | 'delete';
  delta: JsonObject;
  version: number;
  timestamp: string;
  opId?: string;
  deviceId?: string;
  user?: string;
  data?: JsonObject | null;
}

/** Both sides of a conflict and the fields both changed. */
export interface ConflictData {
  clientData: JsonObject;
  serverData: JsonObject;
  conflictFields: string[];
}

/** A conflict as the server records and lists it. */
export interface ConflictRecord {
  id: string;
  localId?: string;
  serverId: string;
  conflictData: ConflictData;
  strategy: Strategy;
  status: 'pending' | 'resolved';
  resolvedData: JsonObject | null;
  namespace: string;
  collection: string;
  baseData?: JsonObject;
  opId: string;
  deviceId?: string;
  user?: string;
  createdAt: string;
  resolvedAt?: string;
}

/** The server's answer to one operation. */
export interface OpResult {
  opId?: string;
  localId?: string;
  serverId?: string;
  action: Action;
  status: OpStatus;
  version?: number;
  seq?: number;
  conflictId?: string;
  strategy?: Strategy;
  conflictData?: ConflictData;
  data?: JsonObject;
  error?: ErrorBody;
}

/** A document as the HTTP API returns it. */
export interface ServerDocument {
  id: string;
  namespace: string;
  collection: string;
  data: JsonObject;
  version: number;
  seq: number;
  updatedAt: string;
  deleted: boolean;
}

/** Codes that mean "never": the operation leaves the queue as rejected. */
const FINAL_CODES: ReadonlySet<string> = new Set([
  'invalid_request',
  'forbidden',
  'not_found',
  'conflict',
  'too_large',
]);

/** Whether an operation refused with `code` should be sent again later. */
export function isTransient(code: ErrorCode): boolean {
  return !FINAL_CODES.has(code);
}

/** Reads an HTTP error body, or makes one from the status when the body is not one. */
export function errorBodyOf(status: number, body: unknown): ErrorBody {
  if (isObject(body) && isObject(body['error'])) {
    const error = body['error'];
    if (typeof error['code'] === 'string' && typeof error['message'] === 'string') {
      const result: ErrorBody = { code: error['code'], message: error['message'] };
      if (isObject(error['details'])) result.details = error['details'];
      return result;
    }
  }
  const code =
    status === 401 ? 'unauthorized'
    : status === 403 ? 'forbidden'
    : status === 404 ? 'not_found'
    : status === 413 ? 'too_large'
    : status === 429 ? 'rate_limited'
    : status === 503 ? 'unavailable'
    : status === 507 ? 'insufficient_storage'
    : status >= 500 ? 'internal'
    : 'invalid_request';
  return { code, message: `HTTP ${status}` };
}
