// The client an application holds: collections with optimistic writes and
// live queries over this tab's replica, events, the offline queue's
// controls, and the sync engine, run by this tab or (when tabs share one
// connection) by the tab holding the lock.

import { isObject, applyMergePatch, deepEqual, type JsonObject, type JsonValue } from './core/json.js';
import { planEnqueue, retried, type BackoffPolicy, type EnqueuePlan, type NewOp, type QueueEntry } from './core/queue.js';
import type { Priority } from './core/protocol.js';
import { isWhereOp, runQuery, type Condition, type Direction, type QuerySpec, type WhereOp } from './core/query.js';
import { localView, planSave, type ServerDoc } from './core/view.js';
import { Engine, type EngineHost, type EngineSettings } from './engine.js';
import { isValidCollection, isValidId, isValidName, uuidv7 } from './ids.js';
import { Replica } from './replica.js';
import { IndexedDbStorage } from './storage/indexeddb.js';
import { MemoryStorage } from './storage/memory.js';
import { StorageError, type Storage, type StorageTx } from './storage/storage.js';
import { canShareTabs, TabLink, type TabMessage } from './tabs.js';
import { HttpApi } from './transport/http.js';
import type {
  ClientEvents,
  ClientOptions,
  ConflictHandler,
  ConnectionState,
  Doc,
  FailedOperation,
  ISyncService,
  Snapshot,
} from './types.js';

/** A bad argument: thrown before anything is stored. */
export class SyncArgumentError extends TypeError {
  override readonly name = 'SyncArgumentError';
}

type Listener<K extends keyof ClientEvents> = (payload: ClientEvents[K]) => void;

interface Watch {
  collection: string;
  spec: QuerySpec;
  callback: (snapshot: Snapshot) => void;
  last: Snapshot | undefined;
}

/** Creates a client, loads its stored state and starts syncing. */
export function createClient(options: ClientOptions): Promise<SyncClient> {
  return openClient(options, true);
}

/** @internal A client that syncs in the background (`run`), or only when `syncNow` is called. */
export async function openClient(options: ClientOptions, run: boolean): Promise<SyncClient> {
  const settings = resolve(options);
  const storage = await openStorage(options, settings);
  const deviceId = await storage.transaction('readwrite', async (tx) => {
    const stored = await tx.getMeta<string>('deviceId');
    if (stored) return stored;
    const created = uuidv7(settings.clock.now(), settings.random);
    await tx.putMeta('deviceId', created);
    return created;
  });
  const client = new SyncClient(settings, storage, deviceId, options.shareConnectionAcrossTabs ?? true);
  await client.load();
  if (run) client.start();
  else client.startManual();
  return client;
}

/** Everything the client runs with, defaults filled in. */
interface ClientSettings extends EngineSettings {
  priorities: Record<string, Priority>;
  backgroundDisconnectMs: number;
  fetch: typeof fetch | undefined;
}

function resolve(options: ClientOptions): ClientSettings {
  if (!isObject(options as unknown)) throw new SyncArgumentError('createClient needs an options object');
  let serverUrl: URL;
  try {
    serverUrl = new URL(options.serverUrl);
  } catch {
    throw new SyncArgumentError(`serverUrl ${JSON.stringify(options.serverUrl)} is not a URL`);
  }
  if (!Array.isArray(options.collections) || options.collections.length === 0) {
    throw new SyncArgumentError('collections must name at least one collection');
  }
  for (const collection of options.collections) {
    if (!isValidCollection(collection)) throw new SyncArgumentError(`collection name ${JSON.stringify(collection)} is invalid (1-64 of A-Z a-z 0-9 _ -, optionally @ and a branch name)`);
  }
  const priorities: Record<string, Priority> = {};
  for (const [collection, priority] of Object.entries(options.priorities ?? {})) {
    if (!options.collections.includes(collection)) throw new SyncArgumentError(`priorities names ${JSON.stringify(collection)}, which is not one of the collections`);
    if (!isPriority(priority)) throw new SyncArgumentError(`priority ${JSON.stringify(priority)} of ${collection} is unknown (high | normal | low)`);
    priorities[collection] = priority;
  }
  const bandwidthLimit = options.device?.bandwidthLimit;
  if (bandwidthLimit !== undefined && !(Number.isSafeInteger(bandwidthLimit) && bandwidthLimit > 0)) {
    throw new SyncArgumentError(`device.bandwidthLimit must be a positive whole number of bytes per second, not ${JSON.stringify(bandwidthLimit)}`);
  }
  const namespace = options.namespace ?? 'default';
  if (!isValidName(namespace)) throw new SyncArgumentError(`namespace ${JSON.stringify(namespace)} is invalid (1-64 of A-Z a-z 0-9 _ -)`);
  const reconnect: BackoffPolicy = {
    baseDelayMs: options.reconnectDelayMs ?? 2000,
    maxDelayMs: options.maxReconnectDelayMs ?? 30_000,
    maxAttempts: options.maxReconnectAttempts ?? 10,
  };
  const retry: BackoffPolicy = { baseDelayMs: 1000, maxDelayMs: 60_000, maxAttempts: options.maxAttempts ?? 10 };
  return {
    serverUrl: serverUrl.toString(),
    websocketUrl: options.websocketUrl,
    token: options.token,
    namespace,
    collections: [...new Set(options.collections)],
    realtime: options.enableRealtimeSync ?? true,
    reconnect,
    retry,
    requestTimeoutMs: options.requestTimeoutMs ?? 15_000,
    longPollSecs: options.longPollSecs ?? 25,
    WebSocket: options.WebSocket,
    clock: options.clock ?? { now: () => Date.now() },
    random: options.random ?? Math.random,
    logger: options.logger ?? console,
    device: options.device ?? {},
    priorities,
    metered: options.metered ?? false,
    backgroundDisconnectMs: options.backgroundDisconnectMs ?? 300_000,
    fetch: options.fetch,
  };
}

async function openStorage(options: ClientOptions, settings: ClientSettings): Promise<Storage> {
  const kind = options.storage ?? (typeof indexedDB !== 'undefined' ? 'indexeddb' : 'memory');
  if (typeof kind === 'object') return kind;
  const name =
    options.databaseName ??
    `sync-engine|${new URL(settings.serverUrl).origin}|${settings.namespace}|${[...settings.collections].sort().join(',')}`;
  if (kind === 'indexeddb') return IndexedDbStorage.open(name);
  if (kind === 'memory') return new MemoryStorage(name);
  throw new SyncArgumentError(`storage ${JSON.stringify(kind)} is unknown (indexeddb | memory)`);
}

/** An offline-first client of the sync engine. Create it with `createClient`. */
export class SyncClient implements ISyncService {
  private readonly replica: Replica;
  private readonly http: HttpApi;
  private readonly listeners = new Map<keyof ClientEvents, Set<Listener<never>>>();
  private readonly watches = new Set<Watch>();
  private readonly dirty = new Set<string>();
  private notifyScheduled = false;
  private state: ConnectionState = 'disconnected';
  private readonly caughtUp = new Set<string>();
  private engine: Engine | undefined;
  private tabs: TabLink | undefined;
  private conflictHandlerFn: ConflictHandler | undefined;
  private lastStampMs = 0;
  private closed = false;
  private metered = false;
  private readonly syncRequests = new Map<string, { resolve(): void; reject(error: Error): void }>();
  private readonly detach: (() => void)[] = [];
  private readonly localListeners = new Set<() => void>();
  private readonly forwarding: { event: keyof ClientEvents; payload: unknown }[] = [];

  /** @internal Use `createClient`. */
  constructor(
    private readonly settings: ClientSettings,
    private readonly storage: Storage,
    /** This device's id, kept in storage. */
    readonly deviceId: string,
    private readonly shareTabs: boolean,
  ) {
    this.replica = new Replica(settings.collections);
    this.http = new HttpApi(settings.serverUrl, settings.token, settings.fetch);
    this.metered = settings.metered;
  }

  /** @internal Loads the stored state into the replica. */
  async load(): Promise<void> {
    for (const collection of this.settings.collections) {
      this.replica.loadCollection(collection, await this.storage.loadDocs(collection));
    }
    this.replica.loadQueue(await this.storage.loadQueue());
  }

  /** @internal Starts syncing: this tab, or the tab elected to hold the connection. */
  start(): void {
    if (this.shareTabs && this.storage.shared && canShareTabs()) {
      this.tabs = new TabLink(this.storage.name, (message) => void this.onTabMessage(message));
      this.tabs.post({ kind: 'hello' });
      this.tabs.campaign(() => void this.becomeLeader());
    } else {
      this.runEngine();
    }
    this.watchEnvironment();
  }

  /** @internal Syncs only when `syncNow` is called (a service worker's flush). */
  startManual(): void {
    this.engine = new Engine(this.engineHost(), { ...this.settings, realtime: false });
  }

  private async becomeLeader(): Promise<void> {
    if (this.closed) return;
    // Another tab held the connection until now: start from what is stored.
    await this.load();
    for (const collection of this.settings.collections) this.dirty.add(collection);
    this.scheduleNotify();
    this.runEngine();
  }

  private runEngine(): void {
    this.engine = new Engine(this.engineHost(), { ...this.settings, metered: this.metered });
    this.engine.start();
  }

  private engineHost(): EngineHost {
    return {
      storage: this.storage,
      replica: this.replica,
      http: this.http,
      deviceId: this.deviceId,
      touched: (docs, change) => this.touched(docs, change.collections ?? [], change.queue),
      emit: (event, payload) => {
        this.emit(event, payload);
        if (this.tabs) this.forward(event, payload);
      },
      setState: (state) => this.setState(state),
      setCaughtUp: (collections, caughtUp) => {
        for (const collection of collections) {
          if (caughtUp) this.caughtUp.add(collection);
          else this.caughtUp.delete(collection);
        }
        this.publishState();
      },
      conflictHandler: () => this.conflictHandlerFn,
    };
  }

  // ---- the public API ----

  /** The connection state. */
  get connectionState(): ConnectionState {
    return this.state;
  }

  /** Whether the client is connected to the server (directly or through the tab holding the connection). */
  isOnline(): boolean {
    return this.state === 'connected';
  }

  /** A collection; it must be one of the client's `collections`. */
  collection<T extends JsonObject = JsonObject>(name: string): Collection<T> {
    if (!this.replica.has(name)) {
      throw new SyncArgumentError(`collection ${JSON.stringify(name)} is not one of this client's collections (${this.settings.collections.join(', ')})`);
    }
    return new Collection<T>(this, name);
  }

  /** Listens to an event; returns the function that stops listening. */
  on<K extends keyof ClientEvents>(event: K, listener: (payload: ClientEvents[K]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => set.delete(listener as Listener<never>);
  }

  /** Resolves conflicts the server leaves pending (strategy `manual`); `undefined` from the handler leaves one pending. */
  onConflict(handler: ConflictHandler | undefined): void {
    this.conflictHandlerFn = handler;
  }

  /** How many operations wait for the server. */
  async pendingCount(): Promise<number> {
    return this.replica.queueLength;
  }

  /** How many operations wait for the server, synchronously. */
  pendingCountNow(): number {
    return this.replica.queueLength;
  }

  /** Calls `listener` after every change of the local state or the connection state; returns the function that stops it. */
  onLocalChange(listener: () => void): () => void {
    this.localListeners.add(listener);
    return () => {
      this.localListeners.delete(listener);
    };
  }

  /** The operations that ran out of attempts; each blocks only its own document until `retry` or `discard`. */
  async failed(): Promise<FailedOperation[]> {
    return this.replica
      .entries()
      .filter((entry) => entry.failed)
      .map((entry) => ({
        opId: entry.opId,
        collection: entry.collection,
        id: entry.id,
        action: entry.action,
        attempts: entry.attempts,
        timestamp: entry.timestamp,
        reason: entry.lastError ?? 'failed',
        ...(entry.data ? { data: entry.data } : {}),
      }));
  }

  /** Gives a failed operation a fresh start. */
  async retry(opId: string): Promise<void> {
    await this.changeEntry(opId, async (tx, entry) => tx.putEntry(retried(entry)));
  }

  /** Drops a queued operation; its edit leaves the local view. */
  async discard(opId: string): Promise<void> {
    await this.changeEntry(opId, async (tx, entry) => tx.removeEntry(entry.seq));
  }

  /**
   * Marks the link metered or slow (`true`) or not. While it is, writes of
   * low priority (`priorities` in the options, or `collection.withPriority('low')`)
   * stay in the durable queue and in the local view as pending writes;
   * normal and high ones still go. Clearing it sends what was held back.
   */
  setMetered(metered: boolean): void {
    this.assertOpen();
    this.metered = metered;
    if (this.engine) this.engine.setMetered(metered);
    else this.tabs?.post({ kind: 'metered', metered });
  }

  /** Whether the link is marked metered. */
  get isMetered(): boolean {
    return this.metered;
  }

  /** Pushes everything pending and pulls what is new; rejects when the server cannot be reached. */
  async syncNow(): Promise<void> {
    this.assertOpen();
    if (this.engine) return this.engine.syncNow();
    if (!this.tabs) throw new Error('the client is not syncing');
    const request = uuidv7(this.settings.clock.now());
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.syncRequests.delete(request);
        reject(new Error('the tab holding the connection did not answer'));
      }, 60_000);
      this.syncRequests.set(request, {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
    this.tabs.post({ kind: 'syncNow', request });
    return done;
  }

  /** Stops syncing and releases the storage; queued operations stay stored for the next start. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const detach of this.detach) detach();
    await this.engine?.stop();
    this.tabs?.close();
    this.storage.close();
    this.watches.clear();
    this.setState('disconnected');
  }

  // ---- writes ----

  /**
   * @internal Queues one local write durably. The live queries show it at
   * once, decided on this tab's replica; the transaction decides again on
   * what is stored (another tab may have written the document meanwhile),
   * and the replica takes the stored outcome when it commits, or goes back
   * to what is stored when it fails.
   */
  async write(collection: string, id: string, decide: Decide, priority?: Priority): Promise<boolean> {
    this.assertOpen();
    const write: PlannedWrite = {
      collection,
      id,
      decide,
      opId: uuidv7(this.settings.clock.now(), this.settings.random),
      timestamp: this.stamp(),
      priority: priority ?? this.settings.priorities[collection] ?? 'normal',
    };
    const shown = this.replica.entriesOf(collection, id);
    const optimistic = planWrite(this.replica.serverDoc(collection, id), shown, write);
    if (optimistic) {
      this.replica.setEntries(collection, id, entriesAfter(shown, optimistic));
      this.touched([[collection, id]], [], true, false);
    }
    let outcome: { server: ServerDoc | undefined; entries: QueueEntry[] } | undefined;
    try {
      outcome = await this.storage.transaction('readwrite', async (tx) => {
        const entries = await tx.queueOf(collection, id);
        const server = await tx.getDoc(collection, id);
        const step = planWrite(server, entries, write);
        if (!step) return undefined;
        if (step.kind === 'add') await tx.addEntry(step.entry);
        else if (step.kind === 'put') await tx.putEntry(step.entry);
        else await tx.removeEntry(step.seq);
        return { server, entries: await tx.queueOf(collection, id) };
      });
    } catch (error) {
      // Nothing of this write was stored; what was queued before stays.
      await this.reload([[collection, id]], [], true).catch(() => this.replica.setEntries(collection, id, shown));
      if (error instanceof StorageError) this.emit('error', { message: error.message, cause: error });
      throw error;
    }
    if (!outcome) {
      if (optimistic) this.replica.setEntries(collection, id, shown);
      this.touched([[collection, id]], [], true, false);
      return false;
    }
    this.replica.setServerDoc(collection, id, outcome.server);
    this.replica.setEntries(collection, id, outcome.entries);
    this.touched([[collection, id]], [], true);
    if (this.engine) this.engine.wake();
    else this.tabs?.post({ kind: 'wake' });
    this.requestBackgroundSync();
    return true;
  }

  private async changeEntry(opId: string, change: (tx: StorageTx, entry: QueueEntry) => Promise<void>): Promise<void> {
    const entry = this.replica.entries().find((candidate) => candidate.opId === opId);
    if (!entry) throw new SyncArgumentError(`no queued operation ${JSON.stringify(opId)}`);
    const entries = await this.storage.transaction('readwrite', async (tx) => {
      const stored = await tx.getEntry(entry.seq);
      if (stored) await change(tx, stored);
      return tx.queueOf(entry.collection, entry.id);
    });
    this.replica.setEntries(entry.collection, entry.id, entries);
    this.touched([[entry.collection, entry.id]], [], true);
    if (this.engine) this.engine.wake();
    else this.tabs?.post({ kind: 'wake' });
  }

  /** An ISO-8601 time for a write, strictly after the previous one. */
  private stamp(): string {
    this.lastStampMs = Math.max(this.settings.clock.now(), this.lastStampMs + 1);
    return new Date(this.lastStampMs).toISOString();
  }

  /** @internal A new document id. */
  newId(): string {
    return uuidv7(this.settings.clock.now(), this.settings.random);
  }

  // ---- reads and live queries ----

  /** @internal The local view of one document. */
  view(collection: string, id: string): Doc | undefined {
    return this.replica.view(collection, id);
  }

  /** @internal The current result of a query. */
  snapshot(collection: string, spec: QuerySpec): Snapshot {
    const docs = runQuery(this.replica.viewsOf(collection), spec) as Doc[];
    return {
      docs,
      hasPendingWrites: docs.some((doc) => this.replica.hasPending(collection, doc.id)),
      fromCache: !(this.state === 'connected' && this.caughtUp.has(collection)),
    };
  }

  /** @internal Calls back now with the result, then whenever it changes; returns the function that stops it. */
  watch(collection: string, spec: QuerySpec, callback: (snapshot: Snapshot) => void): () => void {
    const watch: Watch = { collection, spec, callback, last: undefined };
    this.watches.add(watch);
    this.deliver(watch);
    return () => {
      this.watches.delete(watch);
    };
  }

  private deliver(watch: Watch): void {
    const next = this.snapshot(watch.collection, watch.spec);
    const last = watch.last;
    if (
      last &&
      last.hasPendingWrites === next.hasPendingWrites &&
      last.fromCache === next.fromCache &&
      last.docs.length === next.docs.length &&
      last.docs.every((doc, i) => doc === next.docs[i])
    ) {
      return;
    }
    watch.last = next;
    try {
      watch.callback(next);
    } catch (error) {
      this.settings.logger.warn('a watch callback threw', error);
    }
  }

  /** Shows a change of this tab's replica and, with `broadcast`, tells the other tabs what to re-read. */
  private touched(
    docs: readonly (readonly [string, string])[],
    collections: readonly string[],
    queue: boolean,
    broadcast = true,
  ): void {
    for (const [collection] of docs) this.dirty.add(collection);
    for (const collection of collections) this.dirty.add(collection);
    this.scheduleNotify();
    if (broadcast && this.tabs && (docs.length > 0 || collections.length > 0)) {
      this.tabs.post({ kind: 'touched', docs: docs.map(([c, id]) => [c, id]), collections: [...collections], queue });
    }
  }

  private scheduleNotify(): void {
    if (this.notifyScheduled) return;
    this.notifyScheduled = true;
    queueMicrotask(() => {
      this.notifyScheduled = false;
      const dirty = new Set(this.dirty);
      this.dirty.clear();
      for (const watch of [...this.watches]) if (dirty.has(watch.collection)) this.deliver(watch);
      for (const listener of [...this.localListeners]) {
        try {
          listener();
        } catch (error) {
          this.settings.logger.warn('a local change listener threw', error);
        }
      }
    });
  }

  // ---- state, events, tabs ----

  private setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    this.emit('stateChanged', state);
    this.publishState();
  }

  private publishState(): void {
    for (const collection of this.settings.collections) this.dirty.add(collection);
    this.scheduleNotify();
    if (this.engine) this.tabs?.post({ kind: 'state', state: this.state, caughtUp: [...this.caughtUp] });
  }

  /** Passes an event on to the other tabs, with the others raised in the same turn in one message. */
  private forward(event: keyof ClientEvents, payload: unknown): void {
    if (this.forwarding.length === 0) {
      queueMicrotask(() => {
        const events = this.forwarding.splice(0);
        this.tabs?.post({ kind: 'events', events });
      });
    }
    this.forwarding.push({ event, payload });
  }

  private emit<K extends keyof ClientEvents>(event: K, payload: ClientEvents[K]): void {
    for (const listener of this.listeners.get(event) ?? []) {
      try {
        (listener as Listener<K>)(payload);
      } catch (error) {
        this.settings.logger.warn(`a ${event} listener threw`, error);
      }
    }
  }

  private async onTabMessage(message: TabMessage): Promise<void> {
    if (this.closed) return;
    switch (message.kind) {
      case 'touched':
        await this.reload(message.docs, message.collections, message.queue);
        if (this.engine) this.engine.wake();
        return;
      case 'wake':
        this.engine?.wake();
        return;
      case 'metered':
        this.metered = message.metered;
        this.engine?.setMetered(message.metered);
        return;
      case 'state':
        if (this.engine) return;
        this.caughtUp.clear();
        for (const collection of message.caughtUp) this.caughtUp.add(collection);
        this.state === message.state ? this.publishState() : this.setState(message.state);
        return;
      case 'events':
        if (!this.engine) for (const { event, payload } of message.events) this.emit(event, payload as never);
        return;
      case 'hello':
        if (this.engine) this.publishState();
        return;
      case 'syncNow':
        if (!this.engine) return;
        try {
          await this.engine.syncNow();
          this.tabs?.post({ kind: 'synced', request: message.request });
        } catch (error) {
          this.tabs?.post({ kind: 'synced', request: message.request, error: error instanceof Error ? error.message : String(error) });
        }
        return;
      case 'synced': {
        const request = this.syncRequests.get(message.request);
        if (!request) return;
        this.syncRequests.delete(message.request);
        if (message.error) request.reject(new Error(message.error));
        else request.resolve();
        return;
      }
    }
  }

  /** Re-reads documents another tab changed. */
  private async reload(docs: readonly [string, string][], collections: readonly string[], queue: boolean): Promise<void> {
    const wanted = docs.filter(([collection]) => this.replica.has(collection));
    const read = await this.storage.transaction('readonly', async (tx) => {
      const found: [string, string, ServerDoc | undefined, QueueEntry[] | undefined][] = [];
      for (const [collection, id] of wanted) {
        found.push([collection, id, await tx.getDoc(collection, id), queue ? await tx.queueOf(collection, id) : undefined]);
      }
      return found;
    });
    for (const [collection, id, doc, entries] of read) {
      this.replica.setServerDoc(collection, id, doc);
      if (entries) this.replica.setEntries(collection, id, entries);
    }
    for (const collection of collections) {
      if (this.replica.has(collection)) this.replica.loadCollection(collection, await this.storage.loadDocs(collection));
    }
    this.touched(wanted, collections, queue, false);
  }

  /** Follows the network and the page's visibility. */
  private watchEnvironment(): void {
    const target = globalThis as unknown as Partial<Window>;
    if (typeof target.addEventListener !== 'function') return;
    const online = () => this.engine?.pause(undefined);
    const offline = () => this.engine?.pause('offline');
    target.addEventListener('online', online);
    target.addEventListener('offline', offline);
    this.detach.push(() => {
      target.removeEventListener?.('online', online);
      target.removeEventListener?.('offline', offline);
    });
    const doc = (globalThis as { document?: Document }).document;
    const delay = this.settings.backgroundDisconnectMs;
    if (!doc || delay <= 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const visibility = () => {
      clearTimeout(timer);
      if (doc.visibilityState === 'hidden') {
        timer = setTimeout(() => this.engine?.pause('hidden'), delay);
      } else {
        this.engine?.pause(undefined);
      }
    };
    doc.addEventListener('visibilitychange', visibility);
    this.detach.push(() => {
      clearTimeout(timer);
      doc.removeEventListener('visibilitychange', visibility);
    });
  }

  /** Asks the service worker, where there is one with Background Sync, to flush the queue if the page goes away. */
  private requestBackgroundSync(): void {
    if (this.state === 'connected') return;
    const nav = (globalThis as { navigator?: Navigator }).navigator;
    const worker = nav?.serviceWorker;
    if (!worker?.controller) return;
    void worker.ready
      .then((registration) => (registration as ServiceWorkerRegistration & { sync?: { register(tag: string): Promise<void> } }).sync?.register(BACKGROUND_SYNC_TAG))
      .catch(() => undefined);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('the client is closed');
  }
}

/** What a write makes of a document, given its local view and known server state; `undefined` for nothing. */
type Decide = (
  current: JsonObject | undefined,
  server: ServerDoc | undefined,
) => { action: NewOp['action']; data?: JsonObject } | undefined;

/** One local write, with the identity it keeps however often it is decided. */
interface PlannedWrite {
  collection: string;
  id: string;
  decide: Decide;
  opId: string;
  timestamp: string;
  priority: Priority;
}

/** What `write` does to the queue of its document, decided on `server` and `entries`. */
function planWrite(server: ServerDoc | undefined, entries: readonly QueueEntry[], write: PlannedWrite): EnqueuePlan | undefined {
  const plan = write.decide(localView(server, entries), server);
  if (!plan) return undefined;
  const op: NewOp = { opId: write.opId, collection: write.collection, id: write.id, action: plan.action, timestamp: write.timestamp };
  if (plan.data !== undefined) op.data = plan.data;
  if (write.priority !== 'normal') op.priority = write.priority;
  if (plan.action !== 'create' && server && !server.deleted) op.baseVersion = server.version;
  return planEnqueue(entries, op);
}

/** A document's entries as they will be once `step` is stored; a new entry is marked unsaved until then. */
function entriesAfter(entries: readonly QueueEntry[], step: EnqueuePlan): QueueEntry[] {
  switch (step.kind) {
    case 'add':
      return [...entries, { ...step.entry, seq: Number.MAX_SAFE_INTEGER, unsaved: true }];
    case 'put':
      return entries.map((entry) => (entry.seq === step.entry.seq ? { ...step.entry, unsaved: true } : entry));
    case 'cancel':
      return entries.filter((entry) => entry.seq !== step.seq);
  }
}

function isPriority(value: unknown): value is Priority {
  return value === 'high' || value === 'normal' || value === 'low';
}

/** The Background Sync tag the client registers and the service-worker helper answers. */
export const BACKGROUND_SYNC_TAG = 'sync-engine-flush';

function checkData(data: unknown, what: string): JsonObject {
  if (!isObject(data)) throw new SyncArgumentError(`${what} must be a plain object, not ${data === null ? 'null' : Array.isArray(data) ? 'an array' : typeof data}`);
  checkJson(data, what);
  return data;
}

function checkJson(value: unknown, path: string): asserts value is JsonValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new SyncArgumentError(`${path} is not a finite number`);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => checkJson(item, `${path}[${i}]`));
    return;
  }
  if (isObject(value) && Object.getPrototypeOf(value) === Object.prototype || (isObject(value) && Object.getPrototypeOf(value) === null)) {
    for (const [key, item] of Object.entries(value)) checkJson(item, `${path}.${key}`);
    return;
  }
  throw new SyncArgumentError(`${path} is not JSON (${typeof value})`);
}

function checkId(id: unknown): string {
  if (!isValidId(id)) throw new SyncArgumentError(`document id ${JSON.stringify(id)} is invalid (a string of 1-128 characters)`);
  return id;
}

/** One collection of the client. */
export class Collection<T extends JsonObject = JsonObject> {
  constructor(
    private readonly client: SyncClient,
    /** The collection's name. */
    readonly name: string,
    /** The priority of this handle's writes; the collection's (from `priorities`) when absent. */
    readonly priority?: Priority,
  ) {}

  /** The same collection, whose writes carry `priority` (an urgent write to a collection that usually waits). A document's operations keep their order whatever their priorities. */
  withPriority(priority: Priority): Collection<T> {
    if (!isPriority(priority)) throw new SyncArgumentError(`priority ${JSON.stringify(priority)} is unknown (high | normal | low)`);
    return new Collection<T>(this.client, this.name, priority);
  }

  /**
   * Creates or replaces a document (with an `id` field: that id; without:
   * a new one). Resolves with the id once the write is stored locally and
   * queued; a document the local view has is sent as the changed fields only.
   */
  async save(doc: T & { id?: string }): Promise<string> {
    const data = { ...checkData(doc, 'the document') } as JsonObject;
    const given = data['id'];
    delete data['id'];
    const id = given === undefined ? this.client.newId() : checkId(given);
    await this.client.write(this.name, id, (current) => planSave(current, data, given === undefined), this.priority);
    return id;
  }

  /** Changes the fields in `patch` (a merge patch: `null` removes a field, nested objects merge). */
  async update(id: string, patch: Partial<T> | JsonObject): Promise<void> {
    checkId(id);
    const data = { ...checkData(patch, 'the update') } as JsonObject;
    delete data['id'];
    let missing = false;
    await this.client.write(this.name, id, (current) => {
      // Decided again on what is stored: the last decision says.
      missing = current === undefined;
      if (current === undefined) return undefined;
      return deepEqual(applyMergePatch(current, data), current) ? undefined : { action: 'update', data };
    }, this.priority);
    if (missing) throw new SyncArgumentError(`no document ${JSON.stringify(id)} in ${JSON.stringify(this.name)} to update`);
  }

  /** Deletes a document (nothing when the local view has none). */
  async delete(id: string): Promise<void> {
    checkId(id);
    await this.client.write(
      this.name,
      id,
      (current, server) => (current === undefined && (!server || server.deleted) ? undefined : { action: 'delete' }),
      this.priority,
    );
  }

  /** The document as the local view has it, or `undefined`. */
  async get(id: string): Promise<Doc<T> | undefined> {
    checkId(id);
    const doc = this.client.view(this.name, id);
    return doc && (structuredClone(doc) as Doc<T>);
  }

  /** A query over the collection with one condition. */
  where(field: string, op: WhereOp, value: JsonValue): Query<T> {
    return new Query<T>(this.client, this.name, { where: [], orderBy: [] }).where(field, op, value);
  }

  /** A query ordered by `field`. */
  orderBy(field: string, direction: Direction = 'asc'): Query<T> {
    return new Query<T>(this.client, this.name, { where: [], orderBy: [] }).orderBy(field, direction);
  }

  /** Every document, as a live query. */
  watch(callback: (snapshot: Snapshot<T>) => void): () => void {
    return new Query<T>(this.client, this.name, { where: [], orderBy: [] }).watch(callback);
  }

  /** Every document of the local view. */
  async list(): Promise<Doc<T>[]> {
    return new Query<T>(this.client, this.name, { where: [], orderBy: [] }).get();
  }
}

/** A live query: conditions, order and limit over one collection. Immutable: each method returns a new query. */
export class Query<T extends JsonObject = JsonObject> {
  constructor(
    private readonly client: SyncClient,
    /** The collection queried. */
    readonly collection: string,
    /** What it asks for. */
    readonly spec: QuerySpec,
  ) {}

  /** Adds a condition on a top-level field. */
  where(field: string, op: WhereOp, value: JsonValue): Query<T> {
    if (typeof field !== 'string' || field.length === 0) throw new SyncArgumentError(`where needs a field name, not ${JSON.stringify(field)}`);
    if (!isWhereOp(op)) throw new SyncArgumentError(`where operator ${JSON.stringify(op)} is unknown (== != < <= > >= in)`);
    if (op === 'in' && !Array.isArray(value)) throw new SyncArgumentError(`where ${field} in needs an array`);
    checkJson(value, `the value of where ${field}`);
    const condition: Condition = { field, op, value };
    return new Query<T>(this.client, this.collection, { ...this.spec, where: [...this.spec.where, condition] });
  }

  /** Orders by a top-level field (then by the earlier order, then by id). */
  orderBy(field: string, direction: Direction = 'asc'): Query<T> {
    if (direction !== 'asc' && direction !== 'desc') throw new SyncArgumentError(`orderBy direction ${JSON.stringify(direction)} is not asc or desc`);
    return new Query<T>(this.client, this.collection, { ...this.spec, orderBy: [...this.spec.orderBy, [field, direction]] });
  }

  /** At most `count` documents. */
  limit(count: number): Query<T> {
    if (!Number.isInteger(count) || count < 0) throw new SyncArgumentError(`limit must be a whole number, not ${String(count)}`);
    return new Query<T>(this.client, this.collection, { ...this.spec, limit: count });
  }

  /** The current result. */
  async get(): Promise<Doc<T>[]> {
    return structuredClone(this.client.snapshot(this.collection, this.spec).docs) as Doc<T>[];
  }

  /** The current result with its flags, synchronously (for React's `useSyncExternalStore`). */
  snapshot(): Snapshot<T> {
    return this.client.snapshot(this.collection, this.spec) as Snapshot<T>;
  }

  /** Calls back at once with the result, then after every change that alters it; returns the function that stops it. */
  watch(callback: (snapshot: Snapshot<T>) => void): () => void {
    return this.client.watch(this.collection, this.spec, callback as (snapshot: Snapshot) => void);
  }

  /** A key naming what this query asks for. */
  get key(): string {
    return JSON.stringify([this.collection, this.spec]);
  }
}
