// Shared by the end-to-end tests: polling, clients with test defaults, and the server's documents and histories over its HTTP API.

import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import WebSocket from 'ws';

import { createClient, type ClientEvents, type ClientOptions, type JsonObject, type SyncClient } from '../../src/index.js';
import { api, freePort, startServer, type RunningServer, type StartOptions } from '../support/server.js';

/** Prints nothing. */
export const quietLogger = { debug() {}, warn() {} };

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `predicate` until it returns a truthy value (which is returned).
 * A predicate may also throw (an `expect` that does not hold yet): on
 * timeout the last error is part of the message, so a failure says what
 * was still different.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  timeoutMs = 20_000,
  what = 'the condition',
  intervalMs = 25,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value as NonNullable<T>;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const detail = lastError instanceof Error ? `:\n${lastError.message}` : lastError === undefined ? '' : `: ${String(lastError)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await sleep(intervalMs);
  }
}

/** Clients opened with `openClient`, closed by `closeClients` (call it in `afterEach`). */
const openClients = new Set<SyncClient>();

/**
 * A client of `server` (or of `serverUrl`) with the tests' defaults: the
 * `todos` collection, memory storage, the `ws` package, fast reconnects
 * and a quiet logger. Any option can be overridden.
 */
export async function openClient(
  server: RunningServer | { url: string },
  options: Partial<ClientOptions> = {},
): Promise<SyncClient> {
  const client = await createClient({
    serverUrl: server.url,
    collections: ['todos'],
    storage: 'memory',
    WebSocket: WebSocket as never,
    reconnectDelayMs: 100,
    maxReconnectDelayMs: 500,
    logger: quietLogger,
    ...options,
  });
  openClients.add(client);
  return client;
}

/** Closes a client opened with `openClient`. */
export async function closeClient(client: SyncClient): Promise<void> {
  openClients.delete(client);
  await client.close();
}

/** Closes every client still open. */
export async function closeClients(): Promise<void> {
  const clients = [...openClients];
  openClients.clear();
  await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
}

/** Documents by id, as a plain object with sorted keys (for `toEqual` and readable diffs). */
export type DocsById = Record<string, JsonObject>;

function sortedObject(entries: [string, JsonObject][]): DocsById {
  return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The server's live (not deleted) documents of a collection: id to data. */
export async function serverDocs(url: string, collection = 'todos', namespace = 'default'): Promise<DocsById> {
  const documents = await api(url).documents<JsonObject>(namespace, collection, { limit: 1000 });
  return sortedObject(documents.filter((doc) => !doc.deleted).map((doc) => [doc.id, doc.data]));
}

/** A client's local view of a collection: id to data (without the `id` field). */
export async function localDocs(client: SyncClient, collection = 'todos'): Promise<DocsById> {
  const docs = await client.collection(collection).list();
  return sortedObject(
    docs.map((doc) => {
      const { id, ...data } = doc;
      return [id, data as JsonObject];
    }),
  );
}

/**
 * Waits until no client has anything queued and every client's local view
 * equals the server's documents; returns them.
 */
export async function waitConverged(
  url: string,
  clients: readonly SyncClient[],
  { collection = 'todos', namespace = 'default', timeoutMs = 30_000 } = {},
): Promise<DocsById> {
  let converged: DocsById | undefined;
  await waitFor(
    async () => {
      for (const [i, client] of clients.entries()) {
        expect(await client.pendingCount(), `client ${i} has nothing queued`).toBe(0);
      }
      const onServer = await serverDocs(url, collection, namespace);
      for (const [i, client] of clients.entries()) {
        expect(await localDocs(client, collection), `client ${i} holds the server's documents`).toEqual(onServer);
      }
      converged = onServer;
      return true;
    },
    timeoutMs,
    'every client to hold the server documents',
    50,
  );
  return converged as DocsById;
}

/** One entry of a document's history on the server. */
export interface HistoryEntry {
  version: number;
  seq: number;
  op: 'insert' | 'update' | 'delete';
  delta: JsonObject;
  timestamp: string;
  deviceId: string | null;
  opId: string;
  user: string | null;
}

/** A document's history as the server keeps it, `undefined` when the server has none. */
export async function history(url: string, id: string, collection = 'todos', namespace = 'default'): Promise<HistoryEntry[] | undefined> {
  const route = `/v1/ns/${encodeURIComponent(namespace)}/${encodeURIComponent(collection)}/${encodeURIComponent(id)}/history`;
  const response = await api(url).get<{ versions: HistoryEntry[] }>(route);
  if (response.status === 404) return undefined;
  if (!response.ok) throw new Error(`GET ${route} answered ${response.status}: ${JSON.stringify(response.body)}`);
  return response.body.versions;
}

/**
 * Checks that a history is whole: versions 1, 2, 3... without a gap, seqs
 * growing, and no opId applied twice. Returns the opIds.
 */
export function expectWholeHistory(entries: readonly HistoryEntry[], id: string): string[] {
  expect(entries.map((entry) => entry.version), `versions of ${id}`).toEqual(entries.map((_, i) => i + 1));
  for (let i = 1; i < entries.length; i++) {
    expect((entries[i]?.seq ?? 0) > (entries[i - 1]?.seq ?? 0), `seqs of ${id} grow`).toBe(true);
  }
  const opIds = entries.map((entry) => entry.opId);
  expect(new Set(opIds).size, `opIds of ${id} are distinct`).toBe(opIds.length);
  return opIds;
}

/** Collects the payloads of one client event. */
export function record<K extends keyof ClientEvents>(client: SyncClient, event: K): ClientEvents[K][] {
  const seen: ClientEvents[K][] = [];
  client.on(event, (payload) => void seen.push(payload));
  return seen;
}

/**
 * The URL of a server that is not there (a port free a moment ago): a
 * client given it works offline. Reopen the client with the same storage
 * and the real URL to bring it back online.
 */
export async function unreachableUrl(): Promise<{ url: string }> {
  return { url: `http://127.0.0.1:${await freePort()}` };
}

/**
 * The `ws` WebSocket with a log: how many sockets were opened, and the
 * `type` of every message each way (to see what went over the wire).
 */
export function spyingWebSocket(): { WebSocket: never; opened: () => number; received: string[]; sent: string[] } {
  const received: string[] = [];
  const sent: string[] = [];
  let opened = 0;
  const typeOf = (data: unknown): string => {
    try {
      const value = JSON.parse(String(data)) as { type?: unknown };
      return typeof value.type === 'string' ? value.type : '?';
    } catch {
      return '?';
    }
  };
  class SpyingWebSocket extends WebSocket {
    constructor(url: string) {
      super(url);
      opened++;
      this.addEventListener('message', (event) => void received.push(typeOf(event.data)));
    }
    override send(data: unknown, ...rest: unknown[]): void {
      sent.push(typeOf(data));
      (super.send as (...args: unknown[]) => void)(data, ...rest);
    }
  }
  return { WebSocket: SpyingWebSocket as never, opened: () => opened, received, sent };
}

/**
 * One real server for the tests of a file: started before the first,
 * stopped after the last; the clients each test opened are closed after
 * it. The handle forwards to the running server.
 */
export function serverForFile(options: StartOptions = {}): RunningServer {
  let running: RunningServer | undefined;
  const current = (): RunningServer => {
    if (!running) throw new Error('the server starts before the first test');
    return running;
  };
  beforeAll(async () => {
    running = await startServer(options);
  });
  afterEach(closeClients);
  afterAll(async () => {
    await running?.stop();
  });
  return {
    get url() {
      return current().url;
    },
    get wsUrl() {
      return current().wsUrl;
    },
    get port() {
      return current().port;
    },
    get dataDir() {
      return current().dataDir;
    },
    stop: () => current().stop(),
    kill: () => current().kill(),
    restart: () => current().restart(),
    output: () => current().output(),
  };
}
