// Document-level sync rules (src/core/view.ts): localView, applyChange, ackEffect, planSave, and a multi-client simulation that converges with a model server.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { applyMergePatch, deepEqual, diffMergePatch, isObject, type JsonObject, type JsonValue } from '../../src/core/json.js';
import { isTransient, type Action, type Change, type OpResult, type OpStatus, type WireOperation } from '../../src/core/protocol.js';
import {
  afterFailure,
  outgoing,
  planEnqueue,
  readyEntries,
  retried,
  type BackoffPolicy,
  type NewOp,
  type QueueEntry,
} from '../../src/core/queue.js';
import { ackEffect, applyChange, localView, planSave, type AckEffect, type PendingEdit, type ServerDoc } from '../../src/core/view.js';
import { canon } from './canon.js';


/** `expect(actual).toBe(expected)`, built only on a mismatch (the simulations check a lot). */
function same(actual: string | boolean | undefined, expected: string | boolean | undefined, message: string): void {
  if (actual !== expected) expect(actual, message).toBe(expected);
}

const live = (data: JsonObject, version: number): ServerDoc => ({ data, version, deleted: false });
const tombstone = (version: number): ServerDoc => ({ data: {}, version, deleted: true });

function change(op: Change['op'], version: number, data: JsonObject | null | undefined, delta: JsonObject): Change {
  const made: Change = {
    seq: 9,
    namespace: 'default',
    collection: 'todos',
    id: 'd',
    op,
    delta,
    version,
    timestamp: '2023-12-01T10:30:00.000Z',
    opId: 'op-1',
  };
  if (data !== undefined) made.data = data;
  return made;
}

function result(status: OpStatus, version?: number, data?: JsonObject, extra: Partial<OpResult> = {}): OpResult {
  const made: OpResult = { action: 'update', status, seq: 1, ...extra };
  if (version !== undefined) made.version = version;
  if (data !== undefined) made.data = data;
  return made;
}

describe('localView', () => {
  const server = live({ text: 'a', done: false }, 3);
  const update: PendingEdit = { action: 'update', data: { done: true, tag: 'x' } };
  const remove: PendingEdit = { action: 'update', data: { tag: null } };
  const del: PendingEdit = { action: 'delete' };
  const create: PendingEdit = { action: 'create', data: { text: 'new' } };
  const upsert: PendingEdit = { action: 'upsert', data: { text: 'up' } };
  const check = (known: ServerDoc | undefined, pending: PendingEdit[], expected: JsonObject | undefined) => {
    expect(localView(known, pending), JSON.stringify(pending)).toEqual(expected);
  };

  it('is the server state with the pending edits on top (the Rust cases)', () => {
    check(server, [], { text: 'a', done: false });
    check(server, [update], { text: 'a', done: true, tag: 'x' });
    check(server, [update, remove], { text: 'a', done: true });
    check(server, [update, del], undefined);
    check(undefined, [create, update], { text: 'new', done: true, tag: 'x' });
    check(undefined, [update], undefined);
    check(undefined, [upsert], { text: 'up' });
    check(server, [upsert], { text: 'up', done: false });
    check(server, [del, create], { text: 'new' });
    check(tombstone(4), [], undefined);
  });

  it('treats a tombstone as absent and an edit without data as an empty one', () => {
    check(tombstone(4), [update], undefined);
    check(tombstone(4), [upsert], { text: 'up' });
    check(tombstone(4), [create, remove], { text: 'new' });
    check(server, [{ action: 'update' }], { text: 'a', done: false });
    check(undefined, [{ action: 'create' }], {});
    check(server, [del, upsert, update], { text: 'up', done: true, tag: 'x' });
    check(server, [create], { text: 'new' });
  });

  it('modifies neither the server state nor the edits', () => {
    const known = live({ o: { x: 1 } }, 1);
    const pending: PendingEdit[] = [{ action: 'update', data: { o: { y: 2 } } }];
    Object.freeze(known.data);
    Object.freeze(known.data['o']);
    expect(localView(known, pending)).toEqual({ o: { x: 1, y: 2 } });
    expect(known.data).toEqual({ o: { x: 1 } });
  });
});

describe('applyChange', () => {
  const known = live({ n: 1 }, 2);
  const check = (before: ServerDoc | undefined, incoming: Change, expected: ServerDoc | undefined) => {
    expect(applyChange(before, incoming), JSON.stringify(incoming)).toEqual(expected);
  };

  it('applies only newer changes (the Rust cases)', () => {
    check(known, change('update', 3, { n: 2 }, { n: 2 }), live({ n: 2 }, 3));
    check(known, change('update', 2, { n: 0 }, { n: 0 }), undefined);
    check(known, change('delete', 5, undefined, {}), tombstone(5));
    check(undefined, change('insert', 1, { a: 1 }, { a: 1 }), live({ a: 1 }, 1));
    // A delta without the document applies only on the version right before it.
    check(known, change('update', 3, undefined, { m: true }), live({ n: 1, m: true }, 3));
    check(known, change('update', 4, undefined, { m: true }), undefined);
  });

  it('reads inserts, tombstones and deltas', () => {
    check(undefined, change('insert', 1, null, { a: 1 }), live({ a: 1 }, 1));
    check(undefined, change('insert', 1, undefined, { a: 1 }), live({ a: 1 }, 1));
    check(tombstone(3), change('insert', 4, { b: 2 }, { b: 2 }), live({ b: 2 }, 4));
    check(undefined, change('delete', 7, undefined, {}), tombstone(7));
    check(undefined, change('update', 1, undefined, { a: 1 }), undefined);
    check(undefined, change('update', 6, { a: 1 }, { a: 1 }), live({ a: 1 }, 6));
    check(known, change('update', 3, null, { n: null, o: { p: 1 } }), live({ o: { p: 1 } }, 3));
    check(known, change('insert', 1, { z: 1 }, { z: 1 }), undefined);
    check(tombstone(2), change('delete', 2, undefined, {}), undefined);
  });

  it('gives the same state from deltas as from whole documents when the log arrives in order', () => {
    const patch = fc.dictionary(fc.constantFrom('a', 'b', 'c'), fc.constantFrom<JsonValue>(null, 1, 2, 'x', { p: 1 }, { p: null, q: 2 }), {
      maxKeys: 3,
      noNullPrototype: true,
    });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), patch), { maxLength: 12 }), (steps) => {
        let whole: ServerDoc | undefined = live({ a: 1 }, 1);
        let deltas: ServerDoc | undefined = whole;
        let truth: JsonObject = { a: 1 };
        steps.forEach(([withData, delta], index) => {
          const next = applyMergePatch(truth, delta);
          const version = index + 2;
          whole = applyChange(whole, change('update', version, next, delta)) ?? whole;
          deltas = applyChange(deltas, change('update', version, withData ? next : undefined, delta)) ?? deltas;
          truth = next;
        });
        expect(deltas).toEqual(whole);
        expect(canon(deltas?.data)).toBe(canon(truth));
      }),
      { numRuns: 200 },
    );
  });
});

describe('ackEffect', () => {
  const check = (known: ServerDoc | undefined, op: { action: Action; data?: JsonObject; baseVersion?: number }, answer: OpResult, expected: AckEffect) => {
    expect(ackEffect(known, op, answer), `${JSON.stringify(op)} answered ${JSON.stringify(answer)}`).toEqual(expected);
  };

  it('does not apply replays of resolved answers, nor answers without a change, as sent (the Rust cases)', () => {
    const known = live({ text: 'a' }, 1);
    const upsert = { action: 'upsert' as const, data: { text: 'mine' } };
    check(known, upsert, result('duplicate', 2, { text: 'kept' }, { conflictId: 'c-1' }), { kind: 'apply', doc: live({ text: 'kept' }, 2) });
    check(known, upsert, result('duplicate', 2, undefined, { conflictId: 'c-2' }), { kind: 'fetch' });
    const unchanged = result('success', 2);
    delete unchanged.seq;
    check(known, upsert, unchanged, { kind: 'fetch' });
  });

  it('applies the operation only right after the known version (the Rust cases)', () => {
    const known = live({ text: 'a' }, 1);
    const update = { action: 'update' as const, data: { done: true } };
    check(known, update, result('success', 2), { kind: 'apply', doc: live({ text: 'a', done: true }, 2) });
    check(known, update, result('success', 3), { kind: 'fetch' });
    check(known, update, result('merged', 5, { text: 'm' }), { kind: 'apply', doc: live({ text: 'm' }, 5) });
    check(known, update, result('merged', 5, {}), { kind: 'fetch' });
    check(known, update, result('duplicate', 1), { kind: 'keep' });
    check(known, update, result('conflict', 2), { kind: 'fetch' });
    const create = { action: 'create' as const, data: { x: 1 } };
    check(undefined, create, result('success', 1), { kind: 'apply', doc: live({ x: 1 }, 1) });
    check(known, { action: 'delete' }, result('success', 2), { kind: 'apply', doc: tombstone(2) });
    check(undefined, create, result('success'), { kind: 'fetch' });
  });

  it('reads back an operation made on an older version than the known one (the Rust case)', () => {
    // The update removed a field the client's own pending upsert had added; the
    // server merged it from version 1, where the field did not exist, and kept it.
    const known = live({ meta: { x: 4 }, n: 3 }, 3);
    const data = { meta: null, n: 2 };
    check(known, { action: 'update', data, baseVersion: 1 }, result('success', 4), { kind: 'fetch' });
    check(known, { action: 'update', data, baseVersion: 3 }, result('success', 4), { kind: 'apply', doc: live({ n: 2 }, 4) });
    check(known, { action: 'delete', baseVersion: 1 }, result('success', 4), { kind: 'apply', doc: tombstone(4) });
  });

  it('applies creates and upserts to absent or deleted documents, and needs a read for an update of one', () => {
    check(tombstone(3), { action: 'create', data: { a: 1 } }, result('success', 4), { kind: 'apply', doc: live({ a: 1 }, 4) });
    check(tombstone(3), { action: 'upsert', data: { a: 1 } }, result('success', 4), { kind: 'apply', doc: live({ a: 1 }, 4) });
    check(undefined, { action: 'upsert', data: { a: 1 } }, result('success', 1), { kind: 'apply', doc: live({ a: 1 }, 1) });
    check(live({ b: 2 }, 1), { action: 'upsert', data: { a: 1 } }, result('success', 2), { kind: 'apply', doc: live({ a: 1, b: 2 }, 2) });
    check(tombstone(3), { action: 'update', data: { a: 1 } }, result('success', 4), { kind: 'fetch' });
    check(undefined, { action: 'update', data: { a: 1 } }, result('success', 1), { kind: 'fetch' });
    check(live({}, 1), { action: 'update' }, result('success', 2), { kind: 'apply', doc: live({}, 2) });
    check(live({}, 1), { action: 'update', data: { a: 1 } }, result('duplicate', 2), { kind: 'apply', doc: live({ a: 1 }, 2) });
    check(live({}, 1), { action: 'update', data: { a: 1 } }, result('merged', 1, { a: 1 }), { kind: 'keep' });
    check(live({}, 1), { action: 'update', data: { a: 1 }, baseVersion: 1 }, result('error', 2), { kind: 'fetch' });
  });
});

describe('planSave', () => {
  const check = (current: JsonObject | undefined, next: JsonObject, generated: boolean, expected: ReturnType<typeof planSave>) => {
    expect(planSave(current, next, generated)).toEqual(expected);
  };

  it('sends deltas for known documents (the Rust cases)', () => {
    const current = { text: 'a', done: false, old: 1 };
    const next = { text: 'a', done: true };
    check(current, next, false, { action: 'update', data: { done: true, old: null } });
    check(current, current, false, undefined);
    check(undefined, next, true, { action: 'create', data: next });
    check(undefined, next, false, { action: 'upsert', data: next });
  });

  it('diffs nested objects and ignores key order', () => {
    check({ o: { a: 1, b: 2 } }, { o: { a: 1, b: 3 } }, true, { action: 'update', data: { o: { b: 3 } } });
    check({ a: 1, b: 2 }, { b: 2, a: 1 }, false, undefined);
    check({ o: { a: 1 } }, {}, false, { action: 'update', data: { o: null } });
  });

  it('is a save the local view then shows as saved', () => {
    const value = fc.letrec<{ v: JsonValue; o: JsonObject }>((tie) => ({
      v: fc.oneof({ depthSize: 'small' }, fc.constantFrom<JsonValue>(true, 1, 'x', [], [null]), tie('o')),
      o: fc.dictionary(fc.constantFrom('a', 'b', 'c'), tie('v'), { maxKeys: 3, noNullPrototype: true }),
    })).o;
    fc.assert(
      fc.property(fc.option(value, { nil: undefined }), value, fc.boolean(), (current, next, generated) => {
        const known = current === undefined ? undefined : live(current, 1);
        const plan = planSave(current, next, generated);
        const pending: PendingEdit[] = plan ? [plan] : [];
        expect(canon(localView(known, pending))).toBe(canon(next));
      }),
      { numRuns: 300 },
    );
  });
});

// ---- the simulation: N clients and a server that applies operations in arrival order ----

const COLLECTION = 'todos';
const NAMESPACE = 'default';
const POLICY: BackoffPolicy = { baseDelayMs: 2, maxDelayMs: 8, maxAttempts: 2 };

/** A small seeded random source (mulberry32), for backoff jitter. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The model server: documents with their history, the change log, and the first answer to each applied opId. */
class ModelServer {
  readonly docs = new Map<string, ServerDoc>();
  readonly history = new Map<string, Map<number, ServerDoc>>();
  readonly log: { change: Change; origin: number }[] = [];
  private readonly answers = new Map<string, OpResult>();

  constructor(private readonly fullDocsInChanges: (seq: number) => boolean) {}

  /** The document as it was at `version`. */
  at(id: string, version: number): ServerDoc | undefined {
    return this.history.get(id)?.get(version);
  }

  /** Applies `op` from client `origin` (or answers it as a replay). */
  apply(op: WireOperation, origin: number): OpResult {
    const first = this.answers.get(op.opId);
    if (first) return { ...first, status: 'duplicate' };
    const current = this.docs.get(op.id);
    const isLive = current !== undefined && !current.deleted;
    const fail = (code: string): OpResult => ({
      opId: op.opId,
      action: op.action,
      status: 'error',
      error: { code, message: code },
    });
    let answer: OpResult;
    if (op.action === 'create' && isLive) return fail('conflict');
    if ((op.action === 'update' || op.action === 'delete') && !isLive) return fail('not_found');
    if (!isLive) {
      const data = op.data ?? {};
      answer = this.commit(op, origin, 'insert', { data, version: (current?.version ?? 0) + 1, deleted: false }, data);
    } else if (op.action === 'delete') {
      answer = this.commit(op, origin, 'delete', tombstone(current.version + 1), {});
    } else {
      const data = applyMergePatch(current.data, op.data ?? {});
      if (deepEqual(data, current.data)) {
        // Nothing changed: no new version, no seq.
        answer = { opId: op.opId, action: op.action, status: 'success', version: current.version };
      } else {
        answer = this.commit(op, origin, 'update', live(data, current.version + 1), diffMergePatch(current.data, data));
        // An edit made on an older version than the stored one: say what came out.
        if (op.baseVersion !== undefined && op.baseVersion < current.version) {
          answer = { ...answer, status: 'merged', data };
        }
      }
    }
    this.answers.set(op.opId, answer);
    return answer;
  }

  private commit(op: WireOperation, origin: number, kind: Change['op'], doc: ServerDoc, delta: JsonObject): OpResult {
    this.docs.set(op.id, doc);
    let versions = this.history.get(op.id);
    if (!versions) this.history.set(op.id, (versions = new Map()));
    versions.set(doc.version, doc);
    const seq = this.log.length + 1;
    const made: Change = {
      seq,
      namespace: NAMESPACE,
      collection: COLLECTION,
      id: op.id,
      op: kind,
      delta,
      version: doc.version,
      timestamp: op.timestamp,
      opId: op.opId,
    };
    if (kind !== 'delete' && this.fullDocsInChanges(seq)) made.data = doc.data;
    this.log.push({ change: made, origin });
    return { opId: op.opId, action: op.action, status: 'success', version: doc.version, seq };
  }
}

/** One client: what it knows of the server, its queue, and the messages on the way. */
class ModelClient {
  readonly known = new Map<string, ServerDoc>();
  entries: QueueEntry[] = [];
  readonly inFlight = new Set<number>();
  /** Operations sent, not yet read by the server. */
  readonly outbox: { seq: number; op: WireOperation }[] = [];
  /** Answers on their way back; `lost` when the connection dropped after the server applied. */
  readonly inbox: { seq: number; answer: OpResult | 'lost' }[] = [];
  /** The next change of the log to receive. */
  feed = 0;
  private nextSeq = 1;
  private ops = 0;
  private made = 0;

  constructor(
    readonly index: number,
    private readonly server: ModelServer,
    private readonly echo: boolean,
    private readonly random: () => number,
  ) {}

  entriesOf(id: string): QueueEntry[] {
    return this.entries.filter((entry) => entry.id === id);
  }

  view(id: string): JsonObject | undefined {
    return localView(this.known.get(id), this.entriesOf(id));
  }

  /** The documents the local view has, by id. */
  visible(): string[] {
    const ids = new Set([...this.known.keys(), ...this.entries.map((entry) => entry.id)]);
    return [...ids].filter((id) => this.view(id) !== undefined).sort();
  }

  newId(): string {
    return `c${this.index}-${this.made++}`;
  }

  /** A local write, as the client's `write` makes it: the decision, the base version, the queue step. */
  write(id: string, decide: (current: JsonObject | undefined, server: ServerDoc | undefined) => { action: Action; data?: JsonObject } | undefined, now: number): void {
    const server = this.known.get(id);
    const entries = this.entriesOf(id);
    const plan = decide(localView(server, entries), server);
    if (!plan) return;
    const op: NewOp = {
      opId: `op-${this.index}-${this.ops++}`,
      collection: COLLECTION,
      id,
      action: plan.action,
      timestamp: new Date(now).toISOString(),
    };
    if (plan.data !== undefined) op.data = plan.data;
    if (plan.action !== 'create' && server && !server.deleted) op.baseVersion = server.version;
    const step = planEnqueue(entries, op);
    if (step.kind === 'add') {
      this.entries.push({ ...step.entry, seq: this.nextSeq++ });
    } else if (step.kind === 'put') {
      const target = this.entries.find((entry) => entry.seq === step.entry.seq);
      expect(target?.sent).toBe(false);
      this.entries = this.entries.map((entry) => (entry.seq === step.entry.seq ? step.entry : entry));
    } else {
      const target = this.entries.find((entry) => entry.seq === step.seq);
      expect(target?.sent).toBe(false);
      this.entries = this.entries.filter((entry) => entry.seq !== step.seq);
    }
  }

  /** Sends what the queue has ready (at most `max`). */
  send(now: number, max: number): void {
    for (const entry of readyEntries(this.entries, this.inFlight, now, max)) {
      const sent = { ...entry, sent: true };
      this.entries = this.entries.map((candidate) => (candidate.seq === entry.seq ? sent : candidate));
      this.inFlight.add(entry.seq);
      const known = this.known.get(entry.id);
      this.outbox.push({ seq: entry.seq, op: outgoing(sent, NAMESPACE, known && !known.deleted ? known.version : undefined) });
    }
  }

  /** Acts on one answer, as the engine's `settle` does. */
  settle(index: number, now: number): void {
    const [message] = this.inbox.splice(index, 1);
    if (!message) return;
    this.inFlight.delete(message.seq);
    const entry = this.entries.find((candidate) => candidate.seq === message.seq);
    expect(entry).toBeDefined();
    if (!entry) return;
    const { answer } = message;
    if (answer === 'lost') return;
    if (answer.status === 'error') {
      const code = answer.error?.code ?? 'internal';
      if (isTransient(code)) {
        const next = afterFailure(entry, code, now, POLICY, this.random);
        this.entries = this.entries.map((candidate) => (candidate.seq === entry.seq ? next : candidate));
      } else {
        this.entries = this.entries.filter((candidate) => candidate.seq !== entry.seq);
      }
      return;
    }
    const known = this.known.get(entry.id);
    const effect = ackEffect(known, entry, answer);
    let doc: ServerDoc | undefined;
    if (effect.kind === 'apply') doc = effect.doc;
    else if (effect.kind === 'fetch') doc = this.server.docs.get(entry.id);
    if (doc && doc.version <= (known?.version ?? 0)) doc = undefined;
    if (doc) this.known.set(entry.id, doc);
    this.entries = this.entries.filter((candidate) => candidate.seq !== entry.seq);
  }

  /** Receives the next change of the log (not its own when the server does not echo). */
  receive(): void {
    const item = this.server.log[this.feed];
    if (!item) return;
    this.feed++;
    if (!this.echo && item.origin === this.index) return;
    const next = applyChange(this.known.get(item.change.id), item.change);
    if (next) this.known.set(item.change.id, next);
  }

  retryFailed(): void {
    this.entries = this.entries.map((entry) => (entry.failed ? retried(entry) : entry));
  }

  quiet(): boolean {
    return this.entries.length === 0 && this.outbox.length === 0 && this.inbox.length === 0 && this.feed >= this.server.log.length;
  }
}

/** One step of a run: what happens, to which client, and numbers to pick with. */
interface Step {
  kind: 'edit' | 'send' | 'process' | 'answer' | 'feed' | 'tick' | 'retry';
  client: number;
  a: number;
  b: number;
}

const stepArb: fc.Arbitrary<Step> = fc.record({
  kind: fc.constantFrom<Step['kind']>(
    'edit', 'edit', 'edit', 'edit', 'send', 'send', 'process', 'process', 'process',
    'answer', 'answer', 'answer', 'feed', 'feed', 'feed', 'tick', 'retry',
  ),
  client: fc.nat(),
  a: fc.nat(),
  b: fc.nat(),
});

/** A whole run: the server, the clients, and how it steps them. */
class Simulation {
  readonly server: ModelServer;
  readonly clients: ModelClient[];
  now = 0;

  constructor(count: number, echo: boolean, seed: number) {
    const random = seeded(seed);
    // Without echo, changes come over WebSocket and carry the whole document; with
    // echo (the HTTP feed) some carry only their delta.
    this.server = new ModelServer((seq) => !echo || (seq * 2654435761 + seed) % 3 !== 0);
    this.clients = Array.from({ length: count }, (_, index) => new ModelClient(index, this.server, echo, random));
  }

  /** Seeds the server with documents everyone learns from the feed. */
  seedDocs(ops: WireOperation[]): void {
    for (const op of ops) expect(this.server.apply(op, -1).status).toBe('success');
  }

  /** Runs one step; returns the client whose state it changed, if any. */
  step(step: Step, edit: (client: ModelClient, step: Step) => void): ModelClient | undefined {
    const client = this.clients[step.client % this.clients.length]!;
    switch (step.kind) {
      case 'edit':
        edit(client, step);
        break;
      case 'send':
        client.send(this.now, 1 + (step.a % 3));
        break;
      case 'process': {
        const waiting = this.clients.filter((candidate) => candidate.outbox.length > 0);
        const from = waiting[step.a % Math.max(1, waiting.length)];
        if (from) this.process(from, Math.floor(step.b / 5) % from.outbox.length, step.b % 5);
        return undefined;
      }
      case 'answer':
        if (client.inbox.length > 0) client.settle(step.a % client.inbox.length, this.now);
        break;
      case 'feed':
        for (let n = 0; n <= step.a % 3; n++) client.receive();
        break;
      case 'tick':
        this.now += 1 + (step.a % 4);
        return undefined;
      case 'retry':
        client.retryFailed();
        break;
    }
    return client;
  }

  /** The server reads one operation: `fault` 0 answers `unavailable` without applying, 1 applies and loses the answer. */
  process(client: ModelClient, index: number, fault: number): void {
    const [message] = client.outbox.splice(index, 1);
    if (!message) return;
    if (fault === 0) {
      client.inbox.push({ seq: message.seq, answer: { opId: message.op.opId, action: message.op.action, status: 'error', error: { code: 'unavailable', message: 'busy' } } });
      return;
    }
    const answer = this.server.apply(message.op, client.index);
    client.inbox.push({ seq: message.seq, answer: fault === 1 ? 'lost' : answer });
  }

  /** Delivers everything until every queue is empty and every client has read the whole log. */
  drain(): void {
    for (let round = 0; round < 200; round++) {
      if (this.clients.every((client) => client.quiet())) return;
      this.now += 100;
      for (const client of this.clients) {
        client.retryFailed();
        client.send(this.now, 100);
        while (client.outbox.length > 0) this.process(client, 0, 99);
        while (client.inbox.length > 0) client.settle(0, this.now);
        while (client.feed < this.server.log.length) client.receive();
      }
    }
    throw new Error('the simulation did not settle');
  }

  /** Every client (or just `only`) knows only true past states of the server's documents. */
  checkKnownIsHistory(only?: ModelClient): void {
    for (const client of only ? [only] : this.clients) {
      for (const [id, doc] of client.known) {
        const truth = this.server.at(id, doc.version);
        const message = `client ${client.index}: ${id} at version ${doc.version}`;
        same(doc.deleted, truth?.deleted, message);
        if (doc.data !== truth?.data) same(canon(doc.data), canon(truth?.data), message);
      }
    }
  }

  /** Every client's local view equals the server's documents. */
  checkConverged(): void {
    const ids = new Set([...this.server.docs.keys()]);
    for (const client of this.clients) for (const id of client.known.keys()) ids.add(id);
    for (const id of ids) {
      const doc = this.server.docs.get(id);
      const truth = doc && !doc.deleted ? doc.data : undefined;
      for (const client of this.clients) {
        same(canon(client.view(id)), canon(truth), `client ${client.index}: ${id}`);
      }
    }
  }
}

const seedOp = (id: string, action: Action, version: number, data?: JsonObject): WireOperation => {
  const op: WireOperation = { opId: `seed-${id}-${version}`, action, collection: COLLECTION, namespace: NAMESPACE, id, timestamp: '2024-01-01T00:00:00.000Z' };
  if (data !== undefined) op.data = data;
  return op;
};

describe('the client converges with the server', () => {
  // Each client writes only fields of its own (f0a, f0b for client 0, ...), so the
  // server's plain application in arrival order is what any strategy gives, and a
  // client's own latest value of a field must show in its view at every step.
  it('edits on disjoint fields: own edits always on top, all views equal at the end', () => {
    const values: (JsonValue | undefined)[] = [undefined, 1, 2, 'x', { n: 1 }, { n: 2, m: [1] }, { n: 1, deep: { k: true } }];
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 3 }), fc.boolean(), fc.nat(), fc.array(stepArb, { maxLength: 80, size: 'max' }), (count, echo, seed, steps) => {
        const sim = new Simulation(count, echo, seed);
        sim.seedDocs([seedOp('s0', 'create', 1, { title: 't' }), seedOp('s1', 'create', 1, {})]);
        // What each client last wrote, by document and field (undefined: removed).
        const intent = sim.clients.map(() => new Map<string, Map<string, JsonValue | undefined>>());
        const remember = (client: ModelClient, id: string, field: string, value: JsonValue | undefined) => {
          const fields = intent[client.index]!.get(id) ?? new Map<string, JsonValue | undefined>();
          fields.set(field, value);
          intent[client.index]!.set(id, fields);
        };
        const edit = (client: ModelClient, step: Step) => {
          const field = `f${client.index}${'ab'[step.b % 2]}`;
          const value = values[Math.floor(step.b / 2) % values.length];
          const visible = client.visible();
          if (step.a % 5 === 0 || visible.length === 0) {
            if (value === undefined) return;
            const id = client.newId();
            client.write(id, (current) => planSave(current, { [field]: value }, true), sim.now);
            remember(client, id, field, value);
            return;
          }
          const id = visible[step.a % visible.length]!;
          if (step.a % 2 === 0) {
            // `save`: the whole document with the field changed.
            client.write(id, (current) => {
              const next: JsonObject = { ...current };
              if (value === undefined) delete next[field];
              else next[field] = value;
              return planSave(current, next, false);
            }, sim.now);
          } else {
            // `update`: the changed field as a merge patch.
            const patch: JsonObject = { [field]: value === undefined ? null : value };
            client.write(id, (current) => (current === undefined || deepEqual(applyMergePatch(current, patch), current) ? undefined : { action: 'update', data: patch }), sim.now);
          }
          // A patch merges into an object member: what the field holds is the merge.
          const before = intent[client.index]!.get(id)?.get(field);
          const merged = value !== undefined && isObject(value) && step.a % 2 === 1 && isObject(before ?? null) ? applyMergePatch(before as JsonObject, value) : value;
          remember(client, id, field, merged);
        };
        const checkOwnEditsOnTop = (only?: ModelClient) => {
          for (const client of only ? [only] : sim.clients) {
            for (const [id, fields] of intent[client.index]!) {
              const view = client.view(id);
              same(view !== undefined, true, `client ${client.index} lost ${id}`);
              for (const [field, value] of fields) same(canon(view?.[field]), canon(value), `client ${client.index}: ${id}.${field}`);
            }
          }
        };
        for (const step of steps) {
          // A step changes one client's state at most: check that one.
          const touched = sim.step(step, edit);
          if (!touched) continue;
          checkOwnEditsOnTop(touched);
          sim.checkKnownIsHistory(touched);
        }
        sim.drain();
        checkOwnEditsOnTop();
        sim.checkKnownIsHistory();
        sim.checkConverged();
      }),
      { numRuns: 300 },
    );
  });

  // Every kind of write on shared fields and shared ids: saves, updates, deletes,
  // upserts of chosen ids, creates of generated ones; the server applies in arrival
  // order (last writer wins per field). Right after each write the view shows it.
  it('creates, upserts, updates and deletes on shared documents: the view shows each write, all views equal at the end', () => {
    const values: JsonValue[] = [1, 2, 'x', { p: 1 }, { p: 2, q: [1] }, [1, 2]];
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 3 }), fc.boolean(), fc.nat(), fc.array(stepArb, { maxLength: 80, size: 'max' }), (count, echo, seed, steps) => {
        const sim = new Simulation(count, echo, seed);
        sim.seedDocs([seedOp('d0', 'create', 1, { a: 1 }), seedOp('d1', 'create', 1, { b: 2 }), seedOp('d1', 'delete', 2)]);
        const shared = ['d0', 'd1', 'd2'];
        const edit = (client: ModelClient, step: Step) => {
          const kind = step.a % 6;
          const field = 'abo'[step.b % 3]!;
          const value = values[Math.floor(step.b / 3) % values.length]!;
          const remove = Math.floor(step.b / 3) % 4 === 0;
          const pickVisible = (): string | undefined => {
            const visible = client.visible();
            return visible[Math.floor(step.a / 6) % Math.max(1, visible.length)];
          };
          let expected: { id: string; view: JsonObject | undefined } | undefined;
          // `save` of a document with one field set (or removed): an upsert when the view has none, else a delta.
          const saveField = (id: string): { id: string; view: JsonObject } => {
            let next: JsonObject = {};
            client.write(id, (current) => {
              next = { ...(current ?? {}) };
              if (remove) delete next[field];
              else next[field] = value;
              return planSave(current, next, false);
            }, sim.now);
            return { id, view: next };
          };
          if (kind === 0) {
            // `save` without an id: a create.
            const id = client.newId();
            const data = { [field]: value };
            client.write(id, (current) => planSave(current, data, true), sim.now);
            expected = { id, view: data };
          } else if (kind === 1) {
            // `save` with a chosen id: an upsert when the view has none, else a delta.
            const id = shared[Math.floor(step.a / 6) % shared.length]!;
            expected = saveField(id);
          } else if (kind === 2 || kind === 3) {
            const id = pickVisible();
            if (id === undefined) return;
            const patch: JsonObject = { [field]: remove ? null : value };
            let view: JsonObject | undefined;
            client.write(id, (current) => {
              if (current === undefined) return undefined;
              view = applyMergePatch(current, patch);
              return deepEqual(view, current) ? undefined : { action: 'update', data: patch };
            }, sim.now);
            expected = { id, view };
          } else if (kind === 4) {
            const id = step.b % 2 === 0 ? pickVisible() : shared[step.b % shared.length];
            if (id === undefined) return;
            client.write(id, (current, server) => (current === undefined && (!server || server.deleted) ? undefined : { action: 'delete' }), sim.now);
            expected = { id, view: undefined };
          } else {
            // Another save of a visible document, replacing a field.
            const id = pickVisible();
            if (id === undefined) return;
            expected = saveField(id);
          }
          same(canon(client.view(expected.id)), canon(expected.view), `client ${client.index} wrote ${expected.id}`);
        };
        for (const step of steps) {
          const touched = sim.step(step, edit);
          if (touched) sim.checkKnownIsHistory(touched);
        }
        sim.drain();
        sim.checkKnownIsHistory();
        sim.checkConverged();
      }),
      { numRuns: 300 },
    );
  });
});
