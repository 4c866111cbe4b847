// React bindings: a provider for the client, `useQuery` for a live query
// and `useSyncStatus` for the connection state and pending count, both on
// `useSyncExternalStore`, so a render never tears and a component
// re-renders only when its result changed.

import { createContext, createElement, useCallback, useContext, useMemo, useRef, useSyncExternalStore, type ReactNode } from 'react';
import type { SyncClient, Query } from './client.js';
import type { JsonObject } from './core/json.js';
import type { ConnectionState, Doc } from './types.js';

const ClientContext = createContext<SyncClient | undefined>(undefined);

/** Makes `client` available to `useQuery` and `useSyncStatus` below it. */
export function SyncProvider(props: { client: SyncClient; children?: ReactNode }): ReactNode {
  return createElement(ClientContext.Provider, { value: props.client }, props.children);
}

/** The client given to the nearest `SyncProvider`. */
export function useSyncClient(): SyncClient {
  const client = useContext(ClientContext);
  if (!client) throw new Error('useSyncClient needs a <SyncProvider client={...}> above it');
  return client;
}

/** What `useQuery` returns. */
export interface QueryResult<T extends JsonObject> {
  data: Doc<T>[];
  hasPendingWrites: boolean;
  fromCache: boolean;
  error: Error | undefined;
}

/**
 * A live query's current result; the component re-renders when it changes.
 * The query may be built inline on every render: it is identified by what
 * it asks for.
 */
export function useQuery<T extends JsonObject>(query: Query<T> | ((client: SyncClient) => Query<T>)): QueryResult<T> {
  const client = useContext(ClientContext);
  const built = useMemo(() => {
    try {
      return { query: typeof query === 'function' ? (client ? query(client) : undefined) : query, error: undefined };
    } catch (error) {
      return { query: undefined, error: error instanceof Error ? error : new Error(String(error)) };
    }
    // The query is identified by its key, not by the object built each render.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, typeof query === 'function' ? undefined : query.key]);
  const current = useRef<{ built: typeof built; value: QueryResult<T> } | undefined>(undefined);
  if (current.current?.built !== built) {
    const snapshot = built.query?.snapshot();
    current.current = {
      built,
      value: snapshot
        ? { data: snapshot.docs, hasPendingWrites: snapshot.hasPendingWrites, fromCache: snapshot.fromCache, error: undefined }
        : { data: [], hasPendingWrites: false, fromCache: true, error: built.error ?? new Error('useQuery needs a <SyncProvider client={...}> above it') },
    };
  }
  const subscribe = useCallback(
    (onChange: () => void) => {
      if (!built.query) return () => undefined;
      return built.query.watch((snapshot) => {
        const value = { data: snapshot.docs, hasPendingWrites: snapshot.hasPendingWrites, fromCache: snapshot.fromCache, error: undefined };
        current.current = { built, value };
        onChange();
      });
    },
    [built],
  );
  const read = useCallback(() => current.current?.value as QueryResult<T>, []);
  return useSyncExternalStore(subscribe, read, read);
}

/** The connection state and the number of operations waiting for the server. */
export function useSyncStatus(): { state: ConnectionState; pendingCount: number } {
  const client = useSyncClient();
  const latest = useRef({ state: client.connectionState, pendingCount: client.pendingCountNow() });
  const subscribe = useCallback(
    (onChange: () => void) => {
      const refresh = () => {
        const next = { state: client.connectionState, pendingCount: client.pendingCountNow() };
        if (next.state !== latest.current.state || next.pendingCount !== latest.current.pendingCount) {
          latest.current = next;
          onChange();
        }
      };
      return client.onLocalChange(refresh);
    },
    [client],
  );
  const read = useCallback(() => latest.current, []);
  return useSyncExternalStore(subscribe, read, read);
}
