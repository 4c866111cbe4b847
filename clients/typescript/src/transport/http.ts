// The HTTP API the client uses, over `fetch`: the change feed (catch-up and
// long-poll), one document, pushes through `/v1/sync` and seed-004 bulk
// sync, conflict resolution and the device registry. Errors come back as
// `HttpError` (the server answered with an error body) or `NetworkError`
// (no answer).

import { isObject, type JsonObject } from '../core/json.js';
import {
  errorBodyOf,
  type Change,
  type ConflictRecord,
  type ErrorBody,
  type OpResult,
  type ServerDocument,
  type Strategy,
  type WireOperation,
} from '../core/protocol.js';

/** A token, or a function giving the current one (called before each connection and request). */
export type TokenSource = string | (() => string | undefined | Promise<string | undefined>) | undefined;

/** Reads the current token. */
export async function currentToken(source: TokenSource): Promise<string | undefined> {
  return typeof source === 'function' ? await source() : source;
}

/** The server answered with an error. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    readonly body: ErrorBody,
  ) {
    super(`${body.code}: ${body.message}`);
  }

  /** How long the server asked us to wait (`Retry-After` or `retryAfterSecs`), in ms. */
  get retryAfterMs(): number {
    return (this.body.details?.retryAfterSecs ?? 0) * 1000;
  }
}

/** No answer from the server (offline, refused, aborted). */
export class NetworkError extends Error {
  override readonly name = 'NetworkError';
}

/** One page of the change feed. */
export interface FeedPage {
  changes: Change[];
  cursor: string;
  hasMore: boolean;
}

/** The answer of `/v1/sync` and bulk sync. */
export interface SyncResponse {
  success: boolean;
  results: OpResult[];
  conflicts: ConflictRecord[];
  errors: { localId?: string; code: string; message: string }[];
  syncTimestamp: string;
  cursor: string | null;
  changes?: Change[];
  hasMore: boolean;
}

/** A device as the registry stores it. */
export interface DeviceRegistration {
  deviceId: string;
  name?: string;
  platform?: string;
  appVersion?: string;
  capabilities?: { collections?: string[]; supportsRealTime?: boolean; bandwidthLimit?: number };
}

/** The HTTP API of one server. */
export class HttpApi {
  constructor(
    private readonly baseUrl: string,
    private readonly token: TokenSource,
    private readonly fetchImpl: typeof fetch = (...args) => fetch(...args),
  ) {}

  /** A request to `path`; the parsed JSON answer. */
  async request<T>(
    method: string,
    path: string,
    options: { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal | undefined } = {},
  ): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
    const token = await currentToken(this.token);
    if (token) headers['authorization'] = `Bearer ${token}`;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await this.fetchImpl(new URL(path, this.baseUrl), {
        method,
        headers,
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (error) {
      throw new NetworkError(`${method} ${path}: ${error instanceof Error ? error.message : String(error)}`, {
        cause: error,
      });
    }
    const text = await response.text().catch(() => '');
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!response.ok) {
      const body = errorBodyOf(response.status, parsed);
      const retryAfter = Number(response.headers.get('retry-after'));
      if (Number.isFinite(retryAfter) && retryAfter > 0 && body.details?.retryAfterSecs === undefined) {
        body.details = { ...body.details, retryAfterSecs: retryAfter };
      }
      throw new HttpError(response.status, body);
    }
    if (parsed === undefined) throw new HttpError(response.status, { code: 'internal', message: 'not a JSON answer' });
    return parsed as T;
  }

  /** The changes after `cursor` (from the start without one) in `collections` of `namespace`; `waitSecs` long-polls. */
  changes(
    params: { cursor?: string | undefined; namespace: string; collections: readonly string[]; limit?: number; waitSecs?: number; deviceId?: string },
    signal?: AbortSignal,
  ): Promise<FeedPage> {
    const query = new URLSearchParams();
    if (params.cursor) query.set('cursor', params.cursor);
    query.set('namespace', params.namespace);
    query.set('collection', params.collections.join(','));
    if (params.limit) query.set('limit', String(params.limit));
    if (params.waitSecs) query.set('wait', String(params.waitSecs));
    if (params.deviceId) query.set('deviceId', params.deviceId);
    return this.request('GET', `/v1/changes?${query}`, { signal });
  }

  /** One document with its metadata, or `undefined` when the server has none. */
  async document(namespace: string, collection: string, id: string): Promise<ServerDocument | undefined> {
    const path = `/v1/ns/${encodeURIComponent(namespace)}/${encodeURIComponent(collection)}/${encodeURIComponent(id)}`;
    try {
      return await this.request<ServerDocument>('GET', path);
    } catch (error) {
      if (error instanceof HttpError && error.status === 404) return undefined;
      throw error;
    }
  }

  /** Applies `operations` (in order) through `/v1/sync`. */
  sync(operations: WireOperation[], deviceId: string): Promise<SyncResponse> {
    return this.request('POST', '/v1/sync', { body: { operations, deviceId, pull: false } });
  }

  /** Seed 004's bulk sync of one collection, one chunk. */
  bulkSync(collection: string, body: JsonObject, chunk?: { number: number; total: number }): Promise<SyncResponse> {
    const headers: Record<string, string> = chunk ? { 'x-sync-chunk': `${chunk.number}/${chunk.total}` } : {};
    return this.request('POST', `/api/${encodeURIComponent(collection)}/bulk-sync`, { body, headers });
  }

  /** Resolves a pending conflict; the document as it is after. */
  async resolveConflict(
    id: string,
    resolution: { strategy?: Strategy; resolvedData?: JsonObject },
  ): Promise<{ conflict: ConflictRecord; document: ServerDocument }> {
    return this.request('POST', `/v1/conflicts/${encodeURIComponent(id)}/resolve`, { body: resolution });
  }

  /** Registers (or updates) this device. */
  async registerDevice(device: DeviceRegistration): Promise<void> {
    await this.request<unknown>('POST', '/v1/devices', { body: device });
  }
}

/** Whether `value` looks like a feed page. */
export function isFeedPage(value: unknown): value is FeedPage {
  return isObject(value) && Array.isArray(value['changes']) && typeof value['cursor'] === 'string';
}
