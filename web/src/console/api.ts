// The console's side of the HTTP API: the TypeScript client's `HttpApi`
// (same origin, the token from this tab's session storage) and the answer
// shapes the console reads. A 401 on any call sends the console back to its
// token form with the server's reason.

import type { JsonObject } from '../../../clients/typescript/src/core/json.js';
import {
  errorBodyOf,
  type Change,
  type ConflictRecord,
  type ServerDocument,
  type Strategy,
} from '../../../clients/typescript/src/core/protocol.js';
import { HttpApi, HttpError, NetworkError } from '../../../clients/typescript/src/transport/http.js';

export { HttpError, NetworkError };
export type { Change, ConflictRecord, JsonObject, ServerDocument, Strategy };

const TOKEN_KEY = 'sync-console-token';

/** The token of this tab's session, if one was given. */
export function storedToken(): string | undefined {
  return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}

/** Keeps `token` for this tab's session (closed with the tab); `undefined` forgets it. */
export function storeToken(token: string | undefined): void {
  if (token === undefined) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

/** `GET /v1/stats`. */
export interface Stats {
  totalSyncs: number;
  successRate: number;
  averageDurationMs: number;
  p99DurationMs: number;
  operations: Record<string, number>;
  conflictsByStrategy: Record<string, number>;
  activeConnections: number;
  activeSubscriptions?: number;
  devicesOnline: number;
  documents: number;
  head: number;
}

/** One device of `GET /v1/stats/devices`. */
export interface DeviceStats {
  deviceId: string;
  name: string;
  online: boolean;
  active: boolean;
  lastSeen: string;
  lastSync: string | null;
  lag: number | null;
  unacknowledgedPushes: number;
  operations: Record<string, number>;
  conflicts: number;
}

/** One version of `GET .../history`. */
export interface VersionEntry {
  version: number;
  seq: number;
  op: 'insert' | 'update' | 'delete';
  delta: JsonObject;
  timestamp: string;
  deviceId: string | null;
  opId: string;
  user: string | null;
}

/** One page of the change feed. */
export interface Feed {
  changes: Change[];
  cursor: string;
  hasMore: boolean;
}

const segment = encodeURIComponent;

/** The HTTP API as the console uses it. */
export class ConsoleApi {
  private readonly http = new HttpApi(location.origin, () => storedToken());

  /** Called with the server's message when a call is answered 401. */
  onUnauthorized: (message: string) => void = () => {};

  private async call<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    try {
      return await this.http.request<T>(method, path, { body, signal });
    } catch (error) {
      if (error instanceof HttpError && error.status === 401) this.onUnauthorized(error.body.message);
      throw error;
    }
  }

  stats(): Promise<Stats> {
    return this.call('GET', '/v1/stats');
  }

  /** `GET /metrics` as its samples (`name{labels}` to value). */
  async metrics(): Promise<Map<string, number>> {
    const headers: Record<string, string> = {};
    const token = storedToken();
    if (token) headers['authorization'] = `Bearer ${token}`;
    let response: Response;
    try {
      response = await fetch('/metrics', { headers });
    } catch (error) {
      throw new NetworkError(`GET /metrics: ${String(error)}`, { cause: error });
    }
    const text = await response.text();
    if (!response.ok) {
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      throw new HttpError(response.status, errorBodyOf(response.status, body));
    }
    const samples = new Map<string, number>();
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const cut = line.lastIndexOf(' ');
      if (cut > 0) samples.set(line.slice(0, cut), Number(line.slice(cut + 1)));
    }
    return samples;
  }

  devices(user: string): Promise<{ devices: DeviceStats[] }> {
    const query = user ? `?user=${segment(user)}` : '';
    return this.call('GET', `/v1/stats/devices${query}`);
  }

  conflicts(status: 'pending' | 'resolved', limit: number): Promise<{ conflicts: ConflictRecord[] }> {
    return this.call('GET', `/v1/conflicts?status=${status}&limit=${limit}`);
  }

  resolve(
    id: string,
    resolution: { strategy: Strategy; resolvedData?: JsonObject },
  ): Promise<{ conflict: ConflictRecord; document: ServerDocument }> {
    return this.call('POST', `/v1/conflicts/${segment(id)}/resolve`, resolution);
  }

  collections(): Promise<{ collections: { namespace: string; collection: string }[]; complete: boolean }> {
    return this.call('GET', '/v1/collections');
  }

  documents(
    namespace: string,
    collection: string,
    where: string[],
    after: string | null,
  ): Promise<{ documents: ServerDocument[]; next: string | null }> {
    const query = new URLSearchParams({ limit: '50' });
    for (const condition of where) query.append('where', condition);
    if (after !== null) query.set('after', after);
    return this.call('GET', `/v1/ns/${segment(namespace)}/${segment(collection)}?${query}`);
  }

  document(namespace: string, collection: string, id: string): Promise<ServerDocument> {
    return this.call('GET', `/v1/ns/${segment(namespace)}/${segment(collection)}/${segment(id)}`);
  }

  history(namespace: string, collection: string, id: string): Promise<{ versions: VersionEntry[] }> {
    return this.call('GET', `/v1/ns/${segment(namespace)}/${segment(collection)}/${segment(id)}/history`);
  }

  version(namespace: string, collection: string, id: string, version: number): Promise<ServerDocument> {
    return this.call(
      'GET',
      `/v1/ns/${segment(namespace)}/${segment(collection)}/${segment(id)}/versions/${version}`,
    );
  }

  restore(namespace: string, collection: string, id: string, version: number): Promise<ServerDocument> {
    return this.call(
      'POST',
      `/v1/ns/${segment(namespace)}/${segment(collection)}/${segment(id)}/restore/${version}`,
    );
  }

  /** The change feed after `cursor` (`now`: the head), long-polling up to `waitSecs`. */
  changes(cursor: string, filter: { namespace: string; collection: string }, waitSecs: number, signal: AbortSignal): Promise<Feed> {
    const query = new URLSearchParams({ cursor, limit: '200' });
    if (waitSecs > 0) query.set('wait', String(waitSecs));
    if (filter.namespace) query.set('namespace', filter.namespace);
    if (filter.collection) query.set('collection', filter.collection);
    return this.call('GET', `/v1/changes?${query}`, undefined, signal);
  }
}

/** A failure as one sentence for the reader. */
export function describe(error: unknown): string {
  if (error instanceof HttpError) return `${error.body.message} (${error.body.code}, HTTP ${error.status})`;
  if (error instanceof NetworkError) return 'the server cannot be reached';
  if (error instanceof Error) return error.message;
  return String(error);
}
