// Offline queue rules (src/core/queue.ts, isTransient and errorBodyOf of src/core/protocol.ts): coalescing, readiness, backoff, and a model test of the queue.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { type JsonObject, type JsonValue } from '../../src/core/json.js';
import { errorBodyOf, isTransient, type Action, type Priority } from '../../src/core/protocol.js';
import {
  afterFailure,
  backoffDelay,
  docKey,
  nextAttemptAt,
  outgoing,
  planEnqueue,
  readyEntries,
  retried,
  type BackoffPolicy,
  type EnqueuePlan,
  type NewOp,
  type QueueEntry,
} from '../../src/core/queue.js';
import { localView, type ServerDoc } from '../../src/core/view.js';
import { canon } from './canon.js';


type OpFields = { action: Action; id?: string; collection?: string; opId?: string; timestamp?: string; data?: JsonObject; baseVersion?: number; priority?: Priority };

function newOp(fields: OpFields): NewOp {
  const op: NewOp = {
    opId: fields.opId ?? 'o2',
    collection: fields.collection ?? 'todos',
    id: fields.id ?? 'a',
    action: fields.action,
    timestamp: fields.timestamp ?? '2024-01-01T00:00:05.000Z',
  };
  if (fields.data !== undefined) op.data = fields.data;
  if (fields.baseVersion !== undefined) op.baseVersion = fields.baseVersion;
  if (fields.priority !== undefined) op.priority = fields.priority;
  return op;
}

function entry(fields: OpFields & { seq?: number; sent?: boolean; failed?: boolean; attempts?: number; nextAttemptAt?: number }): QueueEntry {
  return {
    ...newOp({ opId: 'o1', timestamp: '2024-01-01T00:00:00.000Z', ...fields }),
    seq: fields.seq ?? 1,
    sent: fields.sent ?? false,
    attempts: fields.attempts ?? 0,
    nextAttemptAt: fields.nextAttemptAt ?? 0,
    failed: fields.failed ?? false,
  };
}

describe('planEnqueue', () => {
  /** `later` queued behind `earlier` (alone on its document) gives `expected`: the merged entry's fields, `cancelled` or `separate`. */
  const check = (earlier: OpFields, later: OpFields, expected: OpFields | 'cancelled' | 'separate') => {
    const first = entry(earlier);
    const op = newOp(later);
    const plan = planEnqueue([first], op);
    const label = `${JSON.stringify(earlier)} + ${JSON.stringify(later)}`;
    if (expected === 'separate') {
      expect(plan, label).toEqual({ kind: 'add', entry: { ...op, sent: false, attempts: 0, nextAttemptAt: 0, failed: false } });
    } else if (expected === 'cancelled') {
      expect(plan, label).toEqual({ kind: 'cancel', seq: first.seq });
    } else {
      expect(plan, label).toEqual({ kind: 'put', entry: entry({ timestamp: op.timestamp, ...expected }) });
    }
  };

  it('coalesces as the Rust queue does', () => {
    // update + update: the composed patch, the first opId, the later timestamp.
    check(
      { action: 'update', opId: 'o1', data: { x: 1, n: { a: 1 } } },
      { action: 'update', opId: 'o2', data: { y: 2, n: { b: 2 }, x: null } },
      { action: 'update', opId: 'o1', data: { x: null, y: 2, n: { a: 1, b: 2 } } },
    );
    // Not representable as one merge patch: kept apart.
    check({ action: 'update', data: { n: null } }, { action: 'update', data: { n: { b: 2 } } }, 'separate');
    // create + update: the created document with the patch applied.
    check({ action: 'create', data: { x: 1, y: 1 } }, { action: 'update', data: { y: null, z: 3 } }, { action: 'create', data: { x: 1, z: 3 } });
    // upsert + update: composed like two updates.
    check({ action: 'upsert', data: { x: 1 } }, { action: 'update', data: { y: 2 } }, { action: 'upsert', data: { x: 1, y: 2 } });
    // create + delete of a document the server never saw: nothing.
    check({ action: 'create', data: { x: 1 } }, { action: 'delete' }, 'cancelled');
    // Everything else stays apart.
    check({ action: 'update', data: { x: 1 } }, { action: 'delete' }, 'separate');
    check({ action: 'delete' }, { action: 'create', data: {} }, 'separate');
    check({ action: 'update', data: { x: 1 } }, { action: 'upsert', data: { x: 2 } }, 'separate');
    check({ action: 'create', data: {} }, { action: 'create', data: {} }, 'separate');
    check({ action: 'update', baseVersion: 3, data: { x: 1 } }, { action: 'update', baseVersion: 4, data: { y: 1 } }, 'separate');
    check({ action: 'update', data: { x: 1 } }, { action: 'update', baseVersion: 4, data: { y: 1 } }, 'separate');
  });

  it('keeps the earlier base version', () => {
    check(
      { action: 'update', baseVersion: 3, data: { x: 1 } },
      { action: 'update', data: { y: 1 } },
      { action: 'update', baseVersion: 3, data: { x: 1, y: 1 } },
    );
    check(
      { action: 'update', baseVersion: 3, data: { x: 1 } },
      { action: 'update', baseVersion: 3, data: { x: 2 } },
      { action: 'update', baseVersion: 3, data: { x: 2 } },
    );
  });

  it('keeps apart what it cannot merge', () => {
    check({ action: 'update' }, { action: 'update', data: { x: 1 } }, 'separate');
    check({ action: 'update', data: { x: 1 } }, { action: 'update' }, 'separate');
    check({ action: 'create' }, { action: 'update', data: { x: 1 } }, 'separate');
    check({ action: 'upsert', data: { x: 1 } }, { action: 'delete' }, 'separate');
    check({ action: 'upsert', data: { x: 1 } }, { action: 'upsert', data: { x: 2 } }, 'separate');
    check({ action: 'delete' }, { action: 'update', data: { x: 1 } }, 'separate');
    check({ action: 'delete' }, { action: 'delete' }, 'separate');
    check({ action: 'create', data: { o: { a: 1 } } }, { action: 'create', data: { o: { b: 1 } } }, 'separate');
  });

  it('cancels a create only when it is alone on its document', () => {
    const create = entry({ action: 'create', seq: 2, data: {} });
    const olderDelete = entry({ action: 'delete', seq: 1, sent: true });
    expect(planEnqueue([olderDelete, create], newOp({ action: 'delete' })).kind).toBe('add');
    expect(planEnqueue([create], newOp({ action: 'delete' }))).toEqual({ kind: 'cancel', seq: 2 });
  });

  it('never touches an entry that was sent or failed, and merges only into the newest', () => {
    const update = newOp({ action: 'update', data: { y: 1 } });
    for (const newest of [entry({ action: 'update', data: { x: 1 }, sent: true }), entry({ action: 'update', data: { x: 1 }, failed: true })]) {
      expect(planEnqueue([newest], update).kind).toBe('add');
      expect(planEnqueue([newest], newOp({ action: 'delete' })).kind).toBe('add');
    }
    expect(planEnqueue([entry({ action: 'create', data: {}, sent: true })], newOp({ action: 'delete' })).kind).toBe('add');
    expect(planEnqueue([], update)).toEqual({ kind: 'add', entry: { ...update, sent: false, attempts: 0, nextAttemptAt: 0, failed: false } });
    const older = entry({ action: 'update', seq: 1, data: { x: 1 } });
    const newer = entry({ action: 'update', seq: 2, baseVersion: 4, data: { z: 1 } });
    expect(planEnqueue([older, newer], newOp({ action: 'update', baseVersion: 4, data: { y: 1 } }))).toEqual({
      kind: 'put',
      entry: { ...newer, data: { z: 1, y: 1 }, timestamp: update.timestamp },
    });
  });

  // On a document the server does not have, an upsert's data is the whole document,
  // stored as it is: a removal merged into it would be stored as a null member, where
  // the two edits one after the other leave no such member.
  it('merges no removal into an upsert', () => {
    check({ action: 'upsert', data: { a: 1 } }, { action: 'update', data: { a: null } }, 'separate');
    check({ action: 'upsert', data: { o: { a: 1 } } }, { action: 'update', data: { o: { a: null } } }, 'separate');
    check({ action: 'upsert', data: { a: 1 } }, { action: 'update', data: { b: null } }, 'separate');
    check({ action: 'update', data: { a: 1 } }, { action: 'update', data: { a: null } }, { action: 'update', data: { a: null } });
    const check2 = (upsertData: JsonObject, updateData: JsonObject) => {
      const upsert = entry({ action: 'upsert', data: upsertData });
      const update = newOp({ action: 'update', data: updateData });
      const plan = planEnqueue([upsert], update);
      const after = plan.kind === 'put' ? [plan.entry] : [upsert, { ...update, seq: 2, sent: false, attempts: 0, nextAttemptAt: 0, failed: false }];
      expect(localView(undefined, after), `${JSON.stringify(upsertData)} then ${JSON.stringify(updateData)}`).toEqual(localView(undefined, [upsert, update]));
    };
    check2({ a: 1 }, { a: null });
    check2({ o: { a: 1 } }, { o: { a: null } });
    check2({ o: { a: 1 } }, { o: { b: 2 } });
  });
});

describe('readyEntries', () => {
  const queue = (...docs: [number, string][]) => docs.map(([seq, id]) => entry({ action: 'update', seq, id, data: {} }));
  const seqs = (entries: QueueEntry[]) => entries.map((e) => e.seq);

  it('returns only the head of each document (the Rust case)', () => {
    let entries = queue([1, 'a'], [2, 'b'], [3, 'a'], [4, 'c'], [5, 'b']);
    expect(seqs(readyEntries(entries, new Set(), 0, 10))).toEqual([1, 2, 4]);
    expect(seqs(readyEntries(entries, new Set(), 0, 2))).toEqual([1, 2]);
    expect(seqs(readyEntries(entries, new Set([1]), 0, 10))).toEqual([2, 4]);
    entries = entries.filter((e) => e.seq !== 1);
    expect(seqs(readyEntries(entries, new Set(), 0, 10))).toEqual([2, 3, 4]);
    entries = entries.map((e) => (e.seq === 2 ? { ...e, failed: true } : e));
    expect(seqs(readyEntries(entries, new Set(), 0, 10))).toEqual([3, 4]);
  });

  it('waits out backoff, tells collections apart, and honours max', () => {
    const entries = [
      entry({ action: 'update', seq: 1, id: 'a', nextAttemptAt: 10 }),
      entry({ action: 'update', seq: 2, id: 'a' }),
      entry({ action: 'update', seq: 3, id: 'a', collection: 'notes' }),
      entry({ action: 'update', seq: 4, id: 'b' }),
    ];
    expect(seqs(readyEntries(entries, new Set(), 5, 10))).toEqual([3, 4]);
    expect(seqs(readyEntries(entries, new Set(), 10, 10))).toEqual([1, 3, 4]);
    expect(seqs(readyEntries(entries, new Set(), 10, 1))).toEqual([1]);
    expect(readyEntries([], new Set(), 0, 10)).toEqual([]);
  });

  it('hands out high before normal before low, never past an older entry of a document (the Rust case)', () => {
    const at = (seq: number, id: string, priority: Priority) => entry({ action: 'update', seq, id, data: {}, priority });
    const entries = [at(1, 'a', 'low'), at(2, 'b', 'low'), at(3, 'c', 'normal'), at(4, 'd', 'high'), at(5, 'b', 'high'), at(6, 'e', 'low')];
    // b's head is low, but a high edit waits behind it: it goes with the high ones, and entry 5 only after it.
    expect(seqs(readyEntries(entries, new Set(), 0, 10))).toEqual([2, 4, 3, 1, 6]);
    expect(seqs(readyEntries(entries, new Set(), 0, 2))).toEqual([2, 4]);
    expect(seqs(readyEntries(entries, new Set(), 0, 10, 'normal'))).toEqual([2, 4, 3]);
    expect(seqs(readyEntries(entries, new Set(), 0, 10, 'high'))).toEqual([2, 4]);
    const rest = entries.filter((e) => e.seq !== 2 && e.seq !== 4);
    expect(seqs(readyEntries(rest, new Set(), 0, 10, 'high'))).toEqual([5]);
  });

  it('sends the priority on the wire only when it is not normal', () => {
    expect(outgoing(entry({ action: 'update', data: {}, priority: 'low' }), 'default', 1).priority).toBe('low');
    expect('priority' in outgoing(entry({ action: 'update', data: {}, priority: 'normal' }), 'default', 1)).toBe(false);
    expect('priority' in outgoing(entry({ action: 'update', data: {} }), 'default', 1)).toBe(false);
  });

  // "At most `max`", as the Rust queue's `take(max)`: the check comes after the first push.
  it('returns nothing when max is 0', () => {
    expect(seqs(readyEntries(queue([1, 'a']), new Set(), 0, 0))).toEqual([]);
  });
});

describe('nextAttemptAt', () => {
  it('is the earliest future attempt of an entry that is not failed', () => {
    const at = (n: number, failed = false) => entry({ action: 'update', nextAttemptAt: n, failed });
    expect(nextAttemptAt([at(5), at(20), at(12)], 8)).toBe(12);
    expect(nextAttemptAt([at(5), at(8)], 8)).toBeUndefined();
    expect(nextAttemptAt([at(30, true), at(40)], 8)).toBe(40);
    expect(nextAttemptAt([at(30, true)], 8)).toBeUndefined();
    expect(nextAttemptAt([], 0)).toBeUndefined();
  });
});

describe('backoff', () => {
  const policy: BackoffPolicy = { baseDelayMs: 100, maxDelayMs: 1000, maxAttempts: 3 };

  it('draws a full-jitter delay below a doubling, capped ceiling', () => {
    const check = (attempt: number, random: number, expected: number) => {
      expect(backoffDelay(attempt, policy, () => random), `attempt ${attempt}, random ${random}`).toBe(expected);
    };
    check(1, 0, 0);
    check(1, 0.5, 50);
    check(1, 0.999, 99);
    check(2, 0.5, 100);
    check(3, 0.5, 200);
    check(4, 0.5, 400);
    check(5, 0.5, 500);
    check(50, 0.5, 500);
    check(0, 0.5, 50);
  });

  it('stays within [0, min(max, base * 2^(attempt-1)))', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, random) => {
        const delay = backoffDelay(attempt, policy, () => random);
        expect(Number.isInteger(delay)).toBe(true);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThan(Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1)));
      }),
      { numRuns: 300 },
    );
  });

  it('counts a failure, waits, honours retryAfter, and fails the entry when out of attempts', () => {
    const first = entry({ action: 'update', data: { x: 1 }, sent: true });
    const once = afterFailure(first, 'unavailable: busy', 1000, policy, () => 0.5);
    expect(once).toEqual({ ...first, attempts: 1, lastError: 'unavailable: busy', nextAttemptAt: 1050, failed: false });
    const twice = afterFailure(once, 'internal: x', 2000, policy, () => 0.5, 5000);
    expect(twice).toEqual({ ...first, attempts: 2, lastError: 'internal: x', nextAttemptAt: 7000, failed: false });
    const small = afterFailure(once, 'internal: x', 2000, policy, () => 0.5, 10);
    expect(small.nextAttemptAt).toBe(2100);
    const thrice = afterFailure(twice, 'internal: y', 3000, policy, () => 0);
    expect(thrice.failed).toBe(true);
    expect(thrice.attempts).toBe(3);
    expect(first.attempts).toBe(0);
    expect(retried(thrice)).toEqual({ ...thrice, attempts: 0, nextAttemptAt: 0, failed: false });
  });
});

describe('outgoing', () => {
  const check = (fields: OpFields, known: number | undefined, expected: Record<string, unknown>) => {
    expect(outgoing(entry(fields), 'ns', known), JSON.stringify(fields)).toEqual({
      opId: 'o1',
      collection: 'todos',
      namespace: 'ns',
      id: 'a',
      timestamp: '2024-01-01T00:00:00.000Z',
      ...expected,
    });
  };

  it('carries the base version the edit was made on, or the known one for an edit queued behind a create', () => {
    check({ action: 'update', data: { x: 1 }, baseVersion: 3 }, 5, { action: 'update', data: { x: 1 }, baseVersion: 3 });
    check({ action: 'update', data: { x: 1 } }, 5, { action: 'update', data: { x: 1 }, baseVersion: 5 });
    check({ action: 'delete' }, 2, { action: 'delete', baseVersion: 2 });
    check({ action: 'delete' }, undefined, { action: 'delete' });
    check({ action: 'create', data: { x: 1 } }, 2, { action: 'create', data: { x: 1 } });
    check({ action: 'upsert', data: { x: 1 } }, 2, { action: 'upsert', data: { x: 1 } });
    check({ action: 'upsert', data: { x: 1 }, baseVersion: 1 }, 2, { action: 'upsert', data: { x: 1 }, baseVersion: 1 });
    check({ action: 'update', data: {} }, undefined, { action: 'update', data: {} });
  });
});

describe('error codes', () => {
  it('retries transient failures only', () => {
    const check = (code: string, expected: boolean) => expect(isTransient(code), code).toBe(expected);
    for (const code of ['invalid_request', 'forbidden', 'not_found', 'conflict', 'too_large']) check(code, false);
    for (const code of ['internal', 'unavailable', 'rate_limited', 'insufficient_storage', 'unauthorized', 'network', 'something_new']) {
      check(code, true);
    }
  });

  it('reads error bodies, or makes one from the status', () => {
    const check = (status: number, body: unknown, expected: ReturnType<typeof errorBodyOf>) => {
      expect(errorBodyOf(status, body), `${status} ${JSON.stringify(body)}`).toEqual(expected);
    };
    check(429, { error: { code: 'rate_limited', message: 'slow', details: { retryAfterSecs: 2 } } }, { code: 'rate_limited', message: 'slow', details: { retryAfterSecs: 2 } });
    check(400, { error: { code: 'invalid_request', message: 'bad', details: 'x' } }, { code: 'invalid_request', message: 'bad' });
    const statuses: [number, string][] = [
      [401, 'unauthorized'], [403, 'forbidden'], [404, 'not_found'], [413, 'too_large'], [429, 'rate_limited'],
      [503, 'unavailable'], [507, 'insufficient_storage'], [500, 'internal'], [502, 'internal'], [400, 'invalid_request'], [409, 'invalid_request'],
    ];
    for (const [status, code] of statuses) check(status, 'oops', { code, message: `HTTP ${status}` });
    check(500, { error: { code: 7, message: 'x' } }, { code: 'internal', message: 'HTTP 500' });
    check(404, null, { code: 'not_found', message: 'HTTP 404' });
  });
});

describe('docKey', () => {
  it('tells collections and ids apart', () => {
    expect(docKey('a', 'b')).toBe(docKey('a', 'b'));
    expect(docKey('a', 'bc')).not.toBe(docKey('ab', 'c'));
    expect(docKey('todos', 'x')).not.toBe(docKey('notes', 'x'));
  });
});

// ---- the queue against a model ----

type QueueStep =
  | { kind: 'enqueue'; doc: number; action: Action; data: JsonObject | undefined; base: number | undefined }
  | { kind: 'send'; max: number }
  | { kind: 'ack'; pick: number }
  | { kind: 'fail'; pick: number; final: boolean; retryAfter: number }
  | { kind: 'release'; pick: number }
  | { kind: 'tick'; ms: number }
  | { kind: 'retry'; pick: number };

const DOCS: [string, string][] = [['todos', 'a'], ['todos', 'b'], ['notes', 'a']];

const patchArb: fc.Arbitrary<JsonObject> = fc.dictionary(
  fc.constantFrom('x', 'y', 'o'),
  fc.oneof(fc.constantFrom<JsonValue>(null, 1, 2, 'z', [1]), fc.dictionary(fc.constantFrom('p', 'q'), fc.constantFrom<JsonValue>(null, 1, 2), { maxKeys: 2, noNullPrototype: true })),
  { maxKeys: 3, noNullPrototype: true },
);

const queueStepArb: fc.Arbitrary<QueueStep> = fc.oneof(
  { arbitrary: fc.record({
    kind: fc.constant('enqueue' as const),
    doc: fc.nat({ max: DOCS.length - 1 }),
    action: fc.constantFrom<Action>('create', 'update', 'update', 'update', 'delete', 'upsert'),
    data: fc.option(patchArb, { nil: undefined, freq: 8 }),
    base: fc.option(fc.integer({ min: 1, max: 2 }), { nil: undefined }),
  }), weight: 5 },
  { arbitrary: fc.record({ kind: fc.constant('send' as const), max: fc.integer({ min: 1, max: 4 }) }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('ack' as const), pick: fc.nat() }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('fail' as const), pick: fc.nat(), final: fc.boolean(), retryAfter: fc.constantFrom(0, 0, 50) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 40 }) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('retry' as const), pick: fc.nat() }), weight: 1 },
);

describe('the queue against a model', () => {
  const policy: BackoffPolicy = { baseDelayMs: 10, maxDelayMs: 40, maxAttempts: 3 };
  const serverStates: (ServerDoc | undefined)[] = [undefined, { data: {}, version: 2, deleted: true }, { data: { x: 1, o: { p: 1 } }, version: 1, deleted: false }];

  it('keeps FIFO per document with one entry in flight, and never changes a sent entry', () => {
    fc.assert(
      fc.property(fc.array(queueStepArb, { maxLength: 60, size: 'max' }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (steps, jitter) => {
        let entries: QueueEntry[] = [];
        const inFlight = new Set<number>();
        // What each sent entry carried when it was sent: it must go out the same every time.
        const sentAs = new Map<number, string>();
        const wire = (e: QueueEntry) => JSON.stringify([e.opId, e.collection, e.id, e.action, canon(e.data), e.baseVersion, e.timestamp]);
        let nextSeq = 1;
        let now = 0;
        let ops = 0;
        const ofDoc = (e: QueueEntry) => docKey(e.collection, e.id);
        const entriesOf = (key: string) => entries.filter((e) => ofDoc(e) === key);
        const pickInFlight = (pick: number) => [...inFlight].sort((a, b) => a - b)[pick % Math.max(1, inFlight.size)];

        for (const step of steps) {
          switch (step.kind) {
            case 'enqueue': {
              const [collection, id] = DOCS[step.doc]!;
              const op = newOp({ action: step.action, collection, id, opId: `op-${ops++}`, timestamp: new Date(now).toISOString() });
              if (step.action !== 'delete' && step.data !== undefined) op.data = step.data;
              if (step.base !== undefined && step.action !== 'create') op.baseVersion = step.base;
              const before = entriesOf(docKey(collection, id));
              const plan: EnqueuePlan = planEnqueue(before, op);
              if (plan.kind === 'add') {
                entries.push({ ...plan.entry, seq: nextSeq++ });
              } else {
                // Only the newest entry of the document, never sent, never failed, is changed.
                const target = plan.kind === 'put' ? plan.entry.seq : plan.seq;
                const newest = before[before.length - 1];
                expect(newest?.seq).toBe(target);
                expect(newest?.sent).toBe(false);
                expect(newest?.failed).toBe(false);
                expect(inFlight.has(target)).toBe(false);
                if (plan.kind === 'put') {
                  expect([plan.entry.opId, plan.entry.action, plan.entry.id, plan.entry.collection, plan.entry.baseVersion]).toEqual([
                    newest?.opId, newest?.action, newest?.id, newest?.collection, newest?.baseVersion,
                  ]);
                  expect(plan.entry.timestamp).toBe(op.timestamp);
                  entries = entries.map((e) => (e.seq === target ? plan.entry : e));
                } else {
                  expect(newest?.action).toBe('create');
                  expect(op.action).toBe('delete');
                  expect(before).toHaveLength(1);
                  entries = entries.filter((e) => e.seq !== target);
                }
              }
              // The queue shows the same document as the edits one after the other. A create
              // cancelled by a delete leaves what the server has, which is absent or deleted
              // whenever the client makes a create.
              const after = entriesOf(docKey(collection, id));
              for (const server of serverStates) {
                if (plan.kind === 'cancel' && server && !server.deleted) continue;
                const inTurn = canon(localView(server, [...before, op]));
                const queued = canon(localView(server, after));
                if (queued !== inTurn) expect(queued, `on ${JSON.stringify(server)}`).toBe(inTurn);
              }
              break;
            }
            case 'send': {
              const ready = readyEntries(entries, inFlight, now, step.max);
              // The model: the oldest entry of each document, if it is not failed, not in flight and due.
              const heads = new Map<string, QueueEntry>();
              for (const e of entries) if (!heads.has(ofDoc(e))) heads.set(ofDoc(e), e);
              const expected = [...heads.values()]
                .filter((e) => !e.failed && !inFlight.has(e.seq) && e.nextAttemptAt <= now)
                .sort((a, b) => a.seq - b.seq)
                .slice(0, step.max);
              expect(ready.map((e) => e.seq)).toEqual(expected.map((e) => e.seq));
              for (const e of ready) {
                expect(entries.some((older) => ofDoc(older) === ofDoc(e) && older.seq < e.seq)).toBe(false);
                inFlight.add(e.seq);
                const sent = { ...e, sent: true };
                const previous = sentAs.get(e.seq);
                if (previous !== undefined) expect(wire(sent)).toBe(previous);
                sentAs.set(e.seq, wire(sent));
                entries = entries.map((candidate) => (candidate.seq === e.seq ? sent : candidate));
              }
              break;
            }
            case 'ack': {
              const seq = pickInFlight(step.pick);
              if (seq === undefined) break;
              inFlight.delete(seq);
              entries = entries.filter((e) => e.seq !== seq);
              break;
            }
            case 'fail': {
              const seq = pickInFlight(step.pick);
              if (seq === undefined) break;
              inFlight.delete(seq);
              if (step.final) {
                entries = entries.filter((e) => e.seq !== seq);
              } else {
                const stored = entries.find((e) => e.seq === seq)!;
                const next = afterFailure(stored, 'unavailable: busy', now, policy, () => jitter, step.retryAfter);
                expect(next.attempts).toBe(stored.attempts + 1);
                expect(next.nextAttemptAt).toBeGreaterThanOrEqual(now + step.retryAfter);
                expect(next.nextAttemptAt).toBeLessThanOrEqual(now + Math.max(step.retryAfter, policy.maxDelayMs));
                expect(next.failed).toBe(next.attempts >= policy.maxAttempts);
                entries = entries.map((e) => (e.seq === seq ? next : e));
              }
              break;
            }
            case 'release': {
              const seq = pickInFlight(step.pick);
              if (seq !== undefined) inFlight.delete(seq);
              break;
            }
            case 'tick':
              now += step.ms;
              break;
            case 'retry': {
              const failed = entries.filter((e) => e.failed);
              const target = failed[step.pick % Math.max(1, failed.length)];
              if (target) entries = entries.map((e) => (e.seq === target.seq ? retried(e) : e));
              break;
            }
          }
          // Invariants (an assertion is built only on a mismatch: there are many checks).
          // At most one entry of a document in flight, and it is the document's oldest.
          const flying = new Map<string, number>();
          for (const seq of inFlight) {
            const e = entries.find((candidate) => candidate.seq === seq);
            if (!e) expect.fail(`in-flight ${seq} is not queued`);
            const key = ofDoc(e);
            if (flying.has(key)) expect.fail(`two in flight for ${key}: ${flying.get(key)} and ${seq}`);
            flying.set(key, seq);
            if (entriesOf(key)[0]?.seq !== seq) expect.fail(`in-flight ${seq} is not the oldest of ${key}`);
            if (!e.sent) expect.fail(`in-flight ${seq} is not marked sent`);
          }
          // A sent entry still carries what it was sent with.
          for (const e of entries) if (e.sent && wire(e) !== sentAs.get(e.seq)) expect(wire(e)).toBe(sentAs.get(e.seq));
          // Seqs only grow along the queue.
          for (let i = 1; i < entries.length; i++) if (entries[i]!.seq <= entries[i - 1]!.seq) expect.fail(`queue out of order at ${i}`);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('priority of coalesced entries', () => {
  it('a merged entry is as urgent as the more urgent edit', () => {
    const low = entry({ action: 'update', data: { x: 1 }, priority: 'low' });
    const plan = planEnqueue([low], newOp({ action: 'update', data: { y: 2 }, priority: 'high' }));
    expect(plan.kind).toBe('put');
    if (plan.kind === 'put') expect(plan.entry.priority).toBe('high');
    const normal = entry({ action: 'update', data: { x: 1 } });
    const kept = planEnqueue([normal], newOp({ action: 'update', data: { y: 2 }, priority: 'low' }));
    if (kept.kind === 'put') expect('priority' in kept.entry).toBe(false);
    expect(kept.kind).toBe('put');
  });
});
