// The background sync of the tab that holds the connection: catch-up over
// the change feed, WebSocket subscriptions from the stored cursors, the
// queue pushed in order with at most one operation of a document in
// flight, answers settled into storage, and HTTP long-polling whenever the
// socket cannot connect. The decisions are the pure functions of `core/`;
// this file does the I/O and the timing.

import { applyChange, ackEffect, type ServerDoc } from './core/view.js';
import {
  afterFailure,
  backoffDelay,
  nextAttemptAt,
  outgoing,
  readyEntries,
  type BackoffPolicy,
  type QueueEntry,
} from './core/queue.js';
import { isObject, type JsonObject } from './core/json.js';
import { isTransient, type Change, type ConflictData, type ErrorBody, type OpResult, type Priority } from './core/protocol.js';
import type { Replica } from './replica.js';
import type { Storage } from './storage/storage.js';
import { currentToken, HttpError, type HttpApi } from './transport/http.js';
import { Connection, websocketUrl, type ServerMessage, type WebSocketConstructor } from './transport/websocket.js';
import type { ClientEvents, Clock, ConflictHandler, ConnectionState, ConflictInfo } from './types.js';
import type { TokenSource } from './transport/http.js';

/** The settings the engine runs with. */
export interface EngineSettings {
  serverUrl: string;
  websocketUrl: string | undefined;
  token: TokenSource;
  namespace: string;
  collections: readonly string[];
  realtime: boolean;
  reconnect: BackoffPolicy;
  retry: BackoffPolicy;
  requestTimeoutMs: number;
  longPollSecs: number;
  WebSocket: WebSocketConstructor | undefined;
  clock: Clock;
  random: () => number;
  logger: Pick<Console, 'debug' | 'warn'>;
  device: { name?: string; platform?: string; appVersion?: string; bandwidthLimit?: number };
  /** The link is metered or slow at start: low-priority operations wait. */
  metered: boolean;
}

/** What the engine needs from the client that runs it. */
export interface EngineHost {
  readonly storage: Storage;
  readonly replica: Replica;
  readonly http: HttpApi;
  readonly deviceId: string;
  /** Documents whose stored state changed (`queue`: their queued entries too; `collections`: reloaded whole). */
  touched(docs: readonly (readonly [string, string])[], change: { queue: boolean; collections?: readonly string[] }): void;
  emit<K extends keyof ClientEvents>(event: K, payload: ClientEvents[K]): void;
  setState(state: ConnectionState): void;
  /** The collections are now in step with the server (`false`: no longer). */
  setCaughtUp(collections: readonly string[], caughtUp: boolean): void;
  conflictHandler(): ConflictHandler | undefined;
}

/** The stored cursor of a collection is kept under this meta key. */
export function cursorKey(collection: string): string {
  return `cursor:${collection}`;
}

/** The log position a cursor names (`c1.<log>.<seq>`, docs/protocol.md); 0 when it names none. */
export function cursorSeq(cursor: string | undefined): number {
  const seq = Number(cursor?.split('.').pop());
  return Number.isFinite(seq) ? seq : 0;
}

const SOCKET_IN_FLIGHT_MAX = 100;
const HTTP_BATCH_MAX = 200;
const FEED_PAGE = 5000;
const HANDSHAKE_TIMEOUT_MS = 10_000;
const SOCKET_RETRY_INTERVAL_MS = 60_000;
const TICK_MS = 1000;
/** For what the server can give again: known documents, cursors, acknowledgements. */
const RELAXED = { relaxed: true } as const;

interface InFlight {
  entry: QueueEntry;
  sentAt: number;
}

interface Waiter {
  resolve(message: ServerMessage): void;
  reject(error: Error): void;
}

/** A document whose server state changed, with what to tell the application. */
interface Applied {
  collection: string;
  id: string;
  doc: ServerDoc;
  op: Change['op'];
}

/** The background sync. */
export class Engine {
  private stopped = false;
  private running: Promise<void> | undefined;
  private connection: Connection | undefined;
  private connected = false;
  private readonly inFlight = new Map<string, InFlight>();
  private inbox: Promise<void> = Promise.resolve();
  private openBatch: { change: Change; cursor: string }[] | undefined;
  private readonly waiters = new Map<string, Waiter>();
  private readonly wakers = new Set<() => void>();
  private readonly interrupters = new Set<() => void>();
  private readonly idleWaiters = new Set<() => void>();
  private socketFailures = 0;
  private socketRetryAt = 0;
  private pausedBy: 'offline' | 'hidden' | undefined;
  private pushPausedUntil = 0;
  private poll: AbortController | undefined;
  private httpBatch = HTTP_BATCH_MAX;
  private registered = false;
  private everConnected = false;
  private lastHeardAt = 0;
  private lastPingAt = 0;
  private metered: boolean;

  constructor(
    private readonly host: EngineHost,
    private readonly settings: EngineSettings,
  ) {
    this.metered = settings.metered;
  }

  /** Marks the link metered (low-priority operations stay queued) or not (they go at once). */
  setMetered(metered: boolean): void {
    const released = this.metered && !metered;
    this.metered = metered;
    if (released) this.wake();
  }

  /** The least urgent priority that goes out now. */
  private lowest(): Priority {
    return this.metered ? 'normal' : 'low';
  }

  /** Starts the background loop. */
  start(): void {
    this.running ??= this.run().catch((error: unknown) => this.report('the sync loop stopped', error));
  }

  /** Stops syncing and closes the connection; queued operations stay stored. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.connection?.close(1000, 'client closed');
    this.poll?.abort();
    this.interrupt();
    await this.running;
  }

  /** Something changed (a local write, an answer): act now. */
  wake(): void {
    for (const waker of [...this.wakers]) waker();
    // A long-poll in progress is cut short so a new write goes out at once.
    if (this.hasReady()) this.poll?.abort();
  }

  /** Pauses syncing (`offline`, or a page hidden for long) or, with `undefined`, resumes and connects at once. */
  pause(reason: 'offline' | 'hidden' | undefined): void {
    if (reason === 'hidden' && this.pausedBy === 'offline') return;
    this.pausedBy = reason;
    if (reason) {
      this.connection?.close(1000, reason);
      this.poll?.abort();
    } else {
      this.socketFailures = 0;
      this.socketRetryAt = 0;
    }
    this.interrupt();
  }

  /** Whether an operation could go out now. */
  private hasReady(): boolean {
    const now = this.settings.clock.now();
    if (now < this.pushPausedUntil) return false;
    const busy = new Set([...this.inFlight.values()].map((flight) => flight.entry.seq));
    return readyEntries(this.host.replica.entries(), busy, now, 1, this.lowest()).length > 0;
  }

  /** How long until a backed-off operation may go again, at most `atMostMs`. */
  private untilNextAttempt(atMostMs: number): number {
    const now = this.settings.clock.now();
    let wait = atMostMs;
    const next = nextAttemptAt(this.host.replica.heads(), now);
    if (next !== undefined) wait = Math.min(wait, next - now);
    if (this.pushPausedUntil > now) wait = Math.max(wait, Math.min(atMostMs, this.pushPausedUntil - now));
    return Math.max(10, wait);
  }

  /** Pushes everything ready and pulls what is new, then resolves; rejects when the server cannot be reached. */
  async syncNow(): Promise<void> {
    if (this.connection?.open && this.connected) {
      await this.pushSocket(this.connection);
      await this.whenIdle();
      if (this.connection?.open) return;
    }
    await this.pushHttp();
    await this.pullHttp(0);
  }

  // ---- the loop ----

  /**
   * The loop: a WebSocket session while the socket can connect, with an
   * HTTP round and a backoff between attempts; after `maxAttempts` failed
   * attempts in a row, HTTP long-polling, trying the socket again once a
   * minute. Without real time, HTTP long-polling only.
   */
  private async run(): Promise<void> {
    let httpFailures = 0;
    while (!this.stopped) {
      if (this.pausedBy) {
        this.host.setState('disconnected');
        await this.backoff(Number.POSITIVE_INFINITY);
        continue;
      }
      await this.registerDevice();
      const gaveUp = this.socketFailures >= this.settings.reconnect.maxAttempts;
      if (this.settings.realtime && (!gaveUp || this.settings.clock.now() >= this.socketRetryAt)) {
        this.host.setState(this.everConnected || gaveUp ? 'reconnecting' : 'connecting');
        const reached = await this.socketSession();
        if (this.stopped || this.pausedBy) continue;
        this.socketFailures = reached ? 0 : this.socketFailures + 1;
        if (this.socketFailures >= this.settings.reconnect.maxAttempts) {
          this.socketRetryAt = this.settings.clock.now() + SOCKET_RETRY_INTERVAL_MS;
        }
        this.host.setState(this.stateBetweenAttempts());
        // Meanwhile HTTP carries the data.
        await this.httpRound(0);
        if (this.stopped || this.pausedBy) continue;
        await this.backoff(backoffDelay(this.socketFailures, this.settings.reconnect, this.settings.random));
      } else {
        if (!this.settings.realtime && !this.connected) this.host.setState(this.everConnected ? 'reconnecting' : 'connecting');
        // The first round after a failure catches up at once; the next ones long-poll.
        const reached = await this.httpRound(httpFailures === 0 && this.connected ? this.settings.longPollSecs : 0);
        httpFailures = reached ? 0 : httpFailures + 1;
        if (!this.settings.realtime) this.httpReached(reached);
        if (!reached && !this.stopped) {
          await this.backoff(backoffDelay(httpFailures, this.settings.reconnect, this.settings.random));
        }
      }
    }
    this.host.setState('disconnected');
  }

  /** Without real time, the link is HTTP: connected while the server answers. */
  private httpReached(reached: boolean): void {
    if (reached && !this.connected) {
      this.connected = true;
      this.everConnected = true;
      this.host.setState('connected');
      this.host.emit('connected', { collections: [...this.settings.collections] });
    } else if (!reached && this.connected) {
      this.connected = false;
      this.host.setState('reconnecting');
      this.host.setCaughtUp(this.settings.collections, false);
      this.host.emit('disconnected', undefined);
    }
  }

  /** The state between two socket attempts: `error` once the socket gave up (HTTP carries on). */
  private stateBetweenAttempts(): ConnectionState {
    if (this.socketFailures >= this.settings.reconnect.maxAttempts) return 'error';
    return this.everConnected ? 'reconnecting' : 'connecting';
  }

  private async registerDevice(): Promise<void> {
    if (this.registered) return;
    try {
      // Registered again when what it declares changed (a new bandwidth).
      const { bandwidthLimit, ...device } = this.settings.device;
      const registration = bandwidthLimit === undefined ? true : `bandwidth=${bandwidthLimit}`;
      const done = await this.host.storage.transaction('readonly', (tx) => tx.getMeta<boolean | string>('registered'));
      if (done !== registration) {
        const capabilities: { collections: string[]; supportsRealTime: boolean; bandwidthLimit?: number } = {
          collections: [...this.settings.collections],
          supportsRealTime: this.settings.realtime,
        };
        if (bandwidthLimit !== undefined) capabilities.bandwidthLimit = bandwidthLimit;
        await this.host.http.registerDevice({ deviceId: this.host.deviceId, ...device, capabilities });
        await this.host.storage.transaction('readwrite', (tx) => tx.putMeta('registered', registration));
      }
      this.registered = true;
    } catch (error) {
      this.settings.logger.debug('device registration postponed', error);
    }
  }

  // ---- the WebSocket mode ----

  /** One connection from open to close; `true` when it got as far as subscribed. */
  private async socketSession(): Promise<boolean> {
    const Socket = this.settings.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!Socket) {
      this.settings.logger.warn('no WebSocket implementation: pass one as the WebSocket option; using HTTP');
      this.socketFailures = this.settings.reconnect.maxAttempts;
      return false;
    }
    let connection: Connection;
    try {
      const token = await currentToken(this.settings.token);
      const url = websocketUrl(this.settings.serverUrl, this.settings.websocketUrl, token);
      connection = await Connection.open(
        url,
        Socket,
        {
          message: (message) => this.receive(message),
          closed: (code, reason) => this.onClosed(code, reason),
          malformed: (frame) => this.settings.logger.warn('skipped a malformed server message', frame),
        },
        HANDSHAKE_TIMEOUT_MS,
      );
    } catch (error) {
      this.settings.logger.debug('WebSocket did not connect', error);
      return false;
    }
    this.connection = connection;
    this.lastHeardAt = this.settings.clock.now();
    let reached = false;
    try {
      const welcome = this.expect('welcome');
      connection.send({ type: 'hello', deviceId: this.host.deviceId, client: { name: '@sync-engine/client' } });
      const heartbeatSecs = (await welcome)['heartbeatSecs'];
      const heartbeatMs = (typeof heartbeatSecs === 'number' && heartbeatSecs > 0 ? heartbeatSecs : 30) * 1000;
      await this.catchUpMissing();
      const subscribed = this.settings.collections.map((collection) => this.expect(`subscribed:${collection}`));
      for (const collection of this.settings.collections) await this.subscribe(connection, collection);
      await Promise.all(subscribed);
      reached = true;
      this.everConnected = true;
      this.connected = true;
      this.host.setState('connected');
      this.host.setCaughtUp(this.settings.collections, true);
      this.host.emit('connected', { collections: [...this.settings.collections] });
      while (connection.open && !this.stopped && !this.pausedBy) {
        await this.pushSocket(connection);
        this.checkTimeouts(connection);
        this.heartbeat(connection, heartbeatMs);
        await this.sleep(this.untilNextAttempt(TICK_MS));
      }
    } catch (error) {
      if (connection.open) this.settings.logger.debug('WebSocket session ended', error);
    } finally {
      connection.close();
      this.connection = undefined;
      await this.inbox;
      this.inFlight.clear();
      this.rejectWaiters(new Error('the connection closed'));
      this.resolveIdle();
      if (this.connected) {
        this.connected = false;
        this.host.setCaughtUp(this.settings.collections, false);
        this.host.emit('disconnected', undefined);
      }
    }
    return reached;
  }

  private async subscribe(connection: Connection, collection: string): Promise<void> {
    const cursor = await this.host.storage.transaction('readonly', (tx) => tx.getMeta<string>(cursorKey(collection)));
    connection.send({
      type: 'subscribe',
      id: collection,
      collection,
      namespace: this.settings.namespace,
      ...(cursor ? { cursor } : {}),
    });
  }

  /** Collections that were never synced catch up over HTTP first, so every subscription starts from a cursor. */
  private async catchUpMissing(): Promise<void> {
    const cursors = await this.cursors();
    const missing = this.settings.collections.filter((collection) => !cursors.has(collection));
    if (missing.length > 0) await this.pull(missing, undefined, 0);
  }

  private expect(key: string): Promise<ServerMessage> {
    const answer = new Promise<ServerMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(key);
        reject(new Error(`no ${key} from the server in time`));
      }, HANDSHAKE_TIMEOUT_MS);
      this.waiters.set(key, {
        resolve: (message) => {
          clearTimeout(timer);
          resolve(message);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
    // A session that ends early rejects the waiters nobody awaits any more.
    answer.catch(() => undefined);
    return answer;
  }

  private settleWaiter(key: string, message: ServerMessage): void {
    const waiter = this.waiters.get(key);
    if (waiter) {
      this.waiters.delete(key);
      waiter.resolve(message);
    }
  }

  private rejectWaiters(error: Error): void {
    for (const waiter of this.waiters.values()) waiter.reject(error);
    this.waiters.clear();
  }

  private onClosed(code: number, reason: string): void {
    this.settings.logger.debug(`WebSocket closed (${code} ${reason})`);
    this.rejectWaiters(new Error(`the connection closed (${code})`));
    this.wake();
  }

  /** Server messages are handled one at a time, in arrival order; consecutive changes are stored in one transaction. */
  private receive(message: ServerMessage): void {
    this.lastHeardAt = this.settings.clock.now();
    const change = toChange(message);
    if (change) {
      if (!this.openBatch) {
        const batch: { change: Change; cursor: string }[] = [];
        this.openBatch = batch;
        this.enqueueWork(async () => {
          if (this.openBatch === batch) this.openBatch = undefined;
          await this.applyChanges(batch.map((item) => item.change), cursorsOf(batch));
        });
      }
      this.openBatch.push({ change, cursor: typeof message['cursor'] === 'string' ? message['cursor'] : '' });
      return;
    }
    this.openBatch = undefined;
    this.enqueueWork(() => this.handle(message));
  }

  private enqueueWork(work: () => Promise<void>): void {
    this.inbox = this.inbox.then(work).catch((error: unknown) => this.report('a server message could not be handled', error));
  }

  private async handle(message: ServerMessage): Promise<void> {
    switch (message.type) {
      case 'welcome':
        this.settleWaiter('welcome', message);
        return;
      case 'subscribed':
        this.settleWaiter(`subscribed:${String(message['id'])}`, message);
        return;
      case 'ack': {
        const result: OpResult = {
          action: 'update',
          status: message['status'] as OpResult['status'],
          ...(typeof message['version'] === 'number' ? { version: message['version'] } : {}),
          ...(typeof message['seq'] === 'number' ? { seq: message['seq'] } : {}),
          ...(isObject(message['data']) ? { data: message['data'] } : {}),
        };
        await this.answered(String(message['opId']), result);
        return;
      }
      case 'conflict': {
        const result: OpResult = {
          action: 'update',
          status: 'conflict',
          conflictId: String(message['id']),
          ...(isObject(message['conflictData']) ? { conflictData: message['conflictData'] as unknown as ConflictData } : {}),
        };
        await this.answered(String(message['opId']), result);
        return;
      }
      case 'error': {
        const body: ErrorBody = { code: String(message['code']), message: String(message['message']) };
        if (isObject(message['details'])) body.details = message['details'];
        const opId = typeof message['opId'] === 'string' ? message['opId'] : undefined;
        if (opId && this.inFlight.has(opId)) {
          await this.answered(opId, { action: 'update', status: 'error', error: body });
        } else {
          this.host.emit('error', { message: `server: ${body.message}`, code: body.code });
        }
        return;
      }
      case 'resync': {
        if (message['reset'] === true) {
          const id = typeof message['id'] === 'string' ? message['id'] : undefined;
          await this.reset(id && this.settings.collections.includes(id) ? [id] : [...this.settings.collections]);
          this.connection?.close(1000, 'reset');
        } else if (this.connection && typeof message['id'] === 'string' && this.settings.collections.includes(message['id'])) {
          await this.subscribe(this.connection, message['id']);
        } else if (this.connection) {
          for (const collection of this.settings.collections) await this.subscribe(this.connection, collection);
        }
        return;
      }
      case 'pong':
      case 'unsubscribed':
        return;
      default:
        this.settings.logger.warn('skipped an unknown server message', message.type);
    }
  }

  /** Sends what the queue has ready, as far as the in-flight limit allows. */
  private async pushSocket(connection: Connection): Promise<void> {
    while (connection.open && !this.stopped) {
      const now = this.settings.clock.now();
      if (now < this.pushPausedUntil) return;
      const room = SOCKET_IN_FLIGHT_MAX - this.inFlight.size;
      if (room <= 0) return;
      const busy = new Set([...this.inFlight.values()].map((flight) => flight.entry.seq));
      const ready = readyEntries(this.host.replica.entries(), busy, now, room, this.lowest());
      if (ready.length === 0) return;
      const sent = await this.markSent(ready);
      if (!connection.open) return;
      for (const entry of sent) {
        const op = outgoing(entry, this.settings.namespace, this.knownVersion(entry));
        this.inFlight.set(entry.opId, { entry, sentAt: this.settings.clock.now() });
        const type = op.action === 'update' ? 'update' : op.action === 'delete' ? 'delete' : 'insert';
        const { id, action: _action, ...rest } = op;
        connection.send({ type, recordId: id, ...rest });
      }
    }
  }

  private knownVersion(entry: QueueEntry): number | undefined {
    const known = this.host.replica.serverDoc(entry.collection, entry.id);
    return known && !known.deleted ? known.version : undefined;
  }

  /** Marks entries as sent in storage, reading each afresh (another tab may have merged an edit into it). */
  private async markSent(entries: readonly QueueEntry[]): Promise<QueueEntry[]> {
    const fresh = await this.host.storage.transaction('readwrite', async (tx) => {
      const out: QueueEntry[] = [];
      for (const entry of entries) {
        const stored = await tx.getEntry(entry.seq);
        if (!stored) continue;
        if (!stored.sent) await tx.putEntry({ ...stored, sent: true });
        out.push({ ...stored, sent: true });
      }
      return out;
    });
    const gone = entries.filter((entry) => !fresh.some((f) => f.seq === entry.seq));
    for (const entry of [...fresh, ...gone]) await this.refreshEntries(entry.collection, entry.id);
    return fresh;
  }

  /**
   * The server's WebSocket pings are invisible to a page, so the client
   * pings too: after a heartbeat of silence it sends `ping`, and after two
   * more it takes the connection for dead (a network that vanished without
   * closing it) and reconnects.
   */
  private heartbeat(connection: Connection, heartbeatMs: number): void {
    const silentMs = this.settings.clock.now() - this.lastHeardAt;
    if (silentMs > 3 * heartbeatMs) {
      this.settings.logger.debug('no word from the server for three heartbeats; reconnecting');
      connection.close(4000, 'heartbeat');
    } else if (silentMs > heartbeatMs && this.settings.clock.now() - this.lastPingAt > heartbeatMs) {
      this.lastPingAt = this.settings.clock.now();
      connection.send({ type: 'ping' });
    }
  }

  private checkTimeouts(connection: Connection): void {
    const now = this.settings.clock.now();
    for (const flight of this.inFlight.values()) {
      if (now - flight.sentAt > this.settings.requestTimeoutMs) {
        this.settings.logger.debug('no answer to a write in time; reconnecting');
        connection.close(4000, 'answer timeout');
        return;
      }
    }
  }

  private async answered(opId: string, result: OpResult): Promise<void> {
    const flight = this.inFlight.get(opId);
    if (!flight) return;
    try {
      await this.settle(flight.entry, result);
    } finally {
      this.inFlight.delete(opId);
      this.resolveIdle();
      this.wake();
    }
  }

  private whenIdle(): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (!this.connection?.open || (this.inFlight.size === 0 && !this.hasReady())) {
          this.idleWaiters.delete(check);
          resolve();
        }
      };
      this.idleWaiters.add(check);
      check();
    });
  }

  private resolveIdle(): void {
    for (const check of [...this.idleWaiters]) check();
  }

  // ---- answers ----

  /** Acts on the server's answer to `entry`. */
  private async settle(entry: QueueEntry, result: OpResult): Promise<void> {
    if (result.status === 'error') {
      const error = result.error ?? { code: 'internal', message: 'no reason given' };
      if (isTransient(error.code)) await this.failedAttempt(entry, error);
      else await this.rejected(entry, error);
      return;
    }
    const { collection, id } = entry;
    const known = this.host.replica.serverDoc(collection, id);
    const effect = ackEffect(known, entry, result);
    let doc: ServerDoc | undefined;
    if (effect.kind === 'apply') {
      doc = effect.doc;
    } else if (effect.kind === 'fetch') {
      // Without the outcome the view could lose the edit: on failure the
      // entry stays and goes again (the server answers `duplicate`).
      const fetched = await this.host.http.document(this.settings.namespace, collection, id);
      if (fetched) doc = { data: fetched.deleted ? {} : fetched.data, version: fetched.version, deleted: fetched.deleted };
    }
    if (doc && doc.version <= (known?.version ?? 0)) doc = undefined;
    // The known server state moves forward in the same transaction that
    // takes the operation out of the queue, so the edit never leaves the view.
    const entries = await this.host.storage.transaction('readwrite', async (tx) => {
      if (doc) await tx.putDoc(collection, id, doc);
      await tx.removeEntry(entry.seq);
      return tx.queueOf(collection, id);
    }, RELAXED);
    if (doc) this.host.replica.setServerDoc(collection, id, doc);
    this.host.replica.setEntries(collection, id, entries);
    this.host.touched([[collection, id]], { queue: true });
    if (result.status === 'merged') {
      this.host.emit('conflictResolved', { collection, id, ...(result.strategy ? { strategy: result.strategy } : {}) });
    }
    if (result.status === 'conflict' && result.conflictId && result.conflictData) {
      await this.pendingConflict({
        conflictId: result.conflictId,
        namespace: this.settings.namespace,
        collection,
        id,
        conflictData: result.conflictData,
      });
    }
  }

  private async failedAttempt(entry: QueueEntry, error: ErrorBody): Promise<void> {
    const now = this.settings.clock.now();
    const retryAfterMs = (error.details?.retryAfterSecs ?? 0) * 1000;
    const rateLimited = error.code === 'rate_limited';
    if (rateLimited || retryAfterMs > 0) this.pushPausedUntil = Math.max(this.pushPausedUntil, now + Math.max(retryAfterMs, 1000));
    await this.host.storage.transaction('readwrite', async (tx) => {
      const stored = await tx.getEntry(entry.seq);
      if (!stored) return;
      // Being asked to slow down is not a failure of the operation.
      const next = rateLimited
        ? { ...stored, nextAttemptAt: now + Math.max(retryAfterMs, 1000) }
        : afterFailure(stored, `${error.code}: ${error.message}`, now, this.settings.retry, this.settings.random, retryAfterMs);
      await tx.putEntry(next);
    });
    await this.refreshEntries(entry.collection, entry.id);
    if (!rateLimited) {
      this.host.emit('error', { message: `operation on ${entry.collection}/${entry.id} will be retried: ${error.message}`, code: error.code });
    }
  }

  private async rejected(entry: QueueEntry, error: ErrorBody): Promise<void> {
    await this.host.storage.transaction('readwrite', (tx) => tx.removeEntry(entry.seq));
    await this.refreshEntries(entry.collection, entry.id);
    this.host.emit('rejected', {
      opId: entry.opId,
      collection: entry.collection,
      id: entry.id,
      action: entry.action,
      code: error.code,
      message: error.message,
    });
  }

  private async refreshEntries(collection: string, id: string): Promise<void> {
    const entries = await this.host.storage.transaction('readonly', (tx) => tx.queueOf(collection, id));
    this.host.replica.setEntries(collection, id, entries);
    this.host.touched([[collection, id]], { queue: true });
  }

  /** A conflict the server left pending: tell the application, and resolve it when its handler answers. */
  private async pendingConflict(info: ConflictInfo): Promise<void> {
    this.host.emit('conflict', info);
    const handler = this.host.conflictHandler();
    if (!handler) return;
    try {
      const resolution = await handler(info);
      if (!resolution) return;
      const { document } = await this.host.http.resolveConflict(info.conflictId, resolution);
      const known = this.host.replica.serverDoc(info.collection, info.id);
      if (document.version > (known?.version ?? 0)) {
        const doc: ServerDoc = { data: document.deleted ? {} : document.data, version: document.version, deleted: document.deleted };
        await this.host.storage.transaction('readwrite', (tx) => tx.putDoc(info.collection, info.id, doc), RELAXED);
        this.host.replica.setServerDoc(info.collection, info.id, doc);
        this.host.touched([[info.collection, info.id]], { queue: false });
      }
      this.host.emit('conflictResolved', { collection: info.collection, id: info.id, strategy: resolution.strategy });
    } catch (error) {
      this.report(`the conflict ${info.conflictId} could not be resolved`, error);
    }
  }

  // ---- incoming changes ----

  /** Stores incoming changes (only those newer than what is known) and the collections' cursors, in one transaction. */
  private async applyChanges(changes: readonly Change[], cursors: ReadonlyMap<string, string>): Promise<void> {
    const applied: Applied[] = [];
    const staged = new Map<string, ServerDoc>();
    for (const change of changes) {
      if (change.namespace !== this.settings.namespace || !this.host.replica.has(change.collection)) continue;
      const key = `${change.collection}\u0000${change.id}`;
      const known = staged.get(key) ?? this.host.replica.serverDoc(change.collection, change.id);
      const next = applyChange(known, change);
      if (!next) continue;
      staged.set(key, next);
      applied.push({ collection: change.collection, id: change.id, doc: next, op: change.op });
    }
    const wanted = [...cursors].filter(([collection]) => this.host.replica.has(collection));
    if (applied.length === 0 && wanted.length === 0) return;
    await this.host.storage.transaction('readwrite', async (tx) => {
      for (const [key, doc] of staged) {
        const [collection = '', id = ''] = key.split('\u0000');
        await tx.putDoc(collection, id, doc);
      }
      for (const [collection, cursor] of wanted) await tx.putMeta(cursorKey(collection), cursor);
    }, RELAXED);
    const touched: [string, string][] = [];
    for (const [key, doc] of staged) {
      const [collection = '', id = ''] = key.split('\u0000');
      this.host.replica.setServerDoc(collection, id, doc);
      touched.push([collection, id]);
    }
    if (touched.length > 0) this.host.touched(touched, { queue: false });
    for (const item of applied) {
      const event = item.op === 'delete' ? 'delete' : item.op === 'insert' ? 'insert' : 'update';
      this.host.emit(event, {
        collection: item.collection,
        id: item.id,
        version: item.doc.version,
        ...(item.doc.deleted ? {} : { data: item.doc.data }),
      });
    }
  }

  /** Forgets what is known of `collections` (their queues stay), so they are read again from the start. */
  private async reset(collections: readonly string[]): Promise<void> {
    this.settings.logger.debug('the server asked for a reset of', collections);
    await this.host.storage.transaction('readwrite', async (tx) => {
      for (const collection of collections) {
        await tx.clearCollection(collection);
        await tx.putMeta(cursorKey(collection), undefined);
      }
    });
    for (const collection of collections) this.host.replica.loadCollection(collection, new Map());
    this.host.setCaughtUp(collections, false);
    this.host.touched([], { queue: false, collections });
  }

  // ---- the HTTP mode ----

  /** Pushes and pulls over HTTP; `false` when the server could not be reached. */
  private async httpRound(waitSecs: number): Promise<boolean> {
    try {
      await this.pushHttp();
      if (this.stopped || this.pausedBy) return true;
      await this.pullHttp(waitSecs);
      return true;
    } catch (error) {
      this.settings.logger.debug('HTTP sync failed', error);
      return false;
    }
  }

  /** Sends the ready operations through `/v1/sync`, a batch at a time. */
  private async pushHttp(): Promise<void> {
    for (;;) {
      const now = this.settings.clock.now();
      if (this.stopped || now < this.pushPausedUntil) return;
      const ready = readyEntries(this.host.replica.entries(), new Set(), now, this.httpBatch, this.lowest());
      if (ready.length === 0) return;
      const sent = await this.markSent(ready);
      const operations = sent.map((entry) => outgoing(entry, this.settings.namespace, this.knownVersion(entry)));
      let response;
      try {
        response = await this.host.http.sync(operations, this.host.deviceId);
      } catch (error) {
        if (error instanceof HttpError && !isTransient(error.body.code)) {
          // The request as a whole was refused: send one at a time, so only the bad operation is rejected.
          if (sent.length > 1) {
            this.httpBatch = 1;
            continue;
          }
          if (sent[0]) await this.rejected(sent[0], error.body);
          continue;
        }
        if (error instanceof HttpError && error.body.code === 'rate_limited') {
          this.pushPausedUntil = now + Math.max(error.retryAfterMs, 1000);
        }
        throw error;
      }
      this.httpBatch = HTTP_BATCH_MAX;
      const byOpId = new Map(response.results.map((result) => [result.opId, result]));
      for (const entry of sent) {
        const result = byOpId.get(entry.opId);
        if (result) await this.settle(entry, result);
      }
    }
  }

  /** Pulls every collection's changes up to the head, long-polling `waitSecs` when nothing is new. */
  private async pullHttp(waitSecs: number): Promise<void> {
    const cursors = await this.cursors();
    const missing = this.settings.collections.some((collection) => !cursors.has(collection));
    let from: string | undefined;
    if (!missing) {
      for (const cursor of cursors.values()) if (from === undefined || cursorSeq(cursor) < cursorSeq(from)) from = cursor;
    }
    await this.pull(this.settings.collections, from, waitSecs);
  }

  private async pull(collections: readonly string[], from: string | undefined, waitSecs: number): Promise<void> {
    let cursor = from;
    let wait = waitSecs;
    for (;;) {
      const poll = new AbortController();
      this.poll = poll;
      let page;
      try {
        page = await this.host.http.changes(
          {
            cursor,
            namespace: this.settings.namespace,
            collections,
            limit: FEED_PAGE,
            ...(wait > 0 && !this.hasReady() ? { waitSecs: Math.max(1, Math.min(wait, Math.ceil(this.untilNextAttempt(wait * 1000) / 1000))) } : {}),
            deviceId: this.host.deviceId,
          },
          poll.signal,
        );
      } catch (error) {
        if (poll.signal.aborted) return;
        if (error instanceof HttpError && error.body.code === 'cursor_expired') {
          await this.reset(collections);
          cursor = undefined;
          continue;
        }
        throw error;
      } finally {
        if (this.poll === poll) this.poll = undefined;
      }
      await this.applyChanges(page.changes, new Map(collections.map((collection) => [collection, page.cursor])));
      this.host.setCaughtUp(collections, true);
      cursor = page.cursor;
      wait = 0;
      if (!page.hasMore) return;
    }
  }

  private async cursors(): Promise<Map<string, string>> {
    return this.host.storage.transaction('readonly', async (tx) => {
      const found = new Map<string, string>();
      for (const collection of this.settings.collections) {
        const cursor = await tx.getMeta<string>(cursorKey(collection));
        if (cursor) found.set(collection, cursor);
      }
      return found;
    });
  }

  // ---- helpers ----

  /** Waits `ms`, or less when there is work: a local write, an answer, a pause, a stop. */
  private sleep(ms: number): Promise<void> {
    return this.wait(ms, this.wakers);
  }

  /** Waits out a backoff: only a pause, resuming or a stop cut it short, never a local write. */
  private backoff(ms: number): Promise<void> {
    return this.wait(ms, this.interrupters);
  }

  private wait(ms: number, wakers: Set<() => void>): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        if (timer !== undefined) clearTimeout(timer);
        wakers.delete(done);
        resolve();
      };
      if (Number.isFinite(ms)) timer = setTimeout(done, ms);
      wakers.add(done);
    });
  }

  private interrupt(): void {
    for (const waker of [...this.wakers, ...this.interrupters]) waker();
  }

  private report(message: string, error: unknown): void {
    const detail = error instanceof Error ? error.message : String(error);
    this.settings.logger.warn(`${message}: ${detail}`);
    this.host.emit('error', { message: `${message}: ${detail}`, cause: error });
  }
}

/** A change message as a change-log entry, or `undefined` for any other message. */
function toChange(message: ServerMessage): Change | undefined {
  const { type } = message;
  if (type !== 'insert' && type !== 'update' && type !== 'delete') return undefined;
  const { collection, namespace, recordId, version, seq, delta, data, timestamp } = message;
  if (typeof collection !== 'string' || typeof recordId !== 'string' || typeof version !== 'number') return undefined;
  const origin = isObject(message['origin']) ? message['origin'] : undefined;
  const change: Change = {
    seq: typeof seq === 'number' ? seq : 0,
    namespace: typeof namespace === 'string' ? namespace : 'default',
    collection,
    id: recordId,
    op: type,
    delta: isObject(delta) ? delta : {},
    version,
    timestamp: typeof timestamp === 'string' ? timestamp : '',
  };
  if (isObject(data)) change.data = data;
  if (origin && typeof origin['opId'] === 'string') change.opId = origin['opId'];
  return change;
}

function cursorsOf(batch: readonly { change: Change; cursor: string }[]): Map<string, string> {
  const cursors = new Map<string, string>();
  for (const { change, cursor } of batch) if (cursor) cursors.set(change.collection, cursor);
  return cursors;
}

export type { JsonObject };
