// The offline queue's rules as pure functions over its entries, the same
// as the Rust `sync-queue`'s: FIFO per document with at most one entry of
// a document in flight, unsent updates coalesced into the entry before
// them, exponential backoff with full jitter after a transient failure,
// and an entry failed (kept, blocking only its own document) after too
// many attempts. Entries go out high priority first, a document counting as
// urgent as its most urgent entry (its entries never change order), and a
// metered link holds back the documents less urgent than normal. Storage
// and timers live elsewhere.

import { applyMergePatch, composeMergePatches, isObject, type JsonObject } from './json.js';
import type { Action, Priority, WireOperation } from './protocol.js';

/** One queued operation. */
export interface QueueEntry {
  /** Its place in the queue: entries go out in this order per document. */
  seq: number;
  opId: string;
  collection: string;
  id: string;
  action: Action;
  data?: JsonObject;
  /** The server version the edit was made on, when the document had one. */
  baseVersion?: number;
  /** When the edit was made (ISO-8601). */
  timestamp: string;
  /** The server may have seen it: never modified again, only sent again. */
  sent: boolean;
  /** Failed sends so far (answered with a transient error). */
  attempts: number;
  /** Not sent again before this time (ms since the epoch). */
  nextAttemptAt: number;
  /** Why the last send failed. */
  lastError?: string;
  /** Out of attempts: waits for `retry` or `discard`, blocking its document. */
  failed: boolean;
  /** How urgent it is; absent means normal. */
  priority?: Priority;
  /** Shown before its transaction committed (in memory only): not sent, not merged into. */
  unsaved?: boolean;
}

/** A new local edit, before it is queued: the entry's own fields, without the queue's bookkeeping. */
export type NewOp = Pick<QueueEntry, 'opId' | 'collection' | 'id' | 'action' | 'data' | 'baseVersion' | 'timestamp' | 'priority'>;

const RANK: Record<Priority, number> = { high: 0, normal: 1, low: 2 };

/** The rank of a priority, most urgent first: 0 for high, 2 for low; absent is normal. */
export function priorityRank(priority: Priority | undefined): number {
  return RANK[priority ?? 'normal'];
}

/** The more urgent of two priorities. */
export function moreUrgent(a: Priority | undefined, b: Priority | undefined): Priority {
  return priorityRank(a) <= priorityRank(b) ? (a ?? 'normal') : (b ?? 'normal');
}

/** `entry` with `priority`, the field left out when it is normal. */
function withPriority<E extends { priority?: Priority }>(entry: E, priority: Priority): E {
  const { priority: _old, ...rest } = entry;
  return (priority === 'normal' ? rest : { ...rest, priority }) as E;
}

/** What queuing an edit does to the entries of its document. */
export type EnqueuePlan =
  /** Add a new entry at the end of the queue (storage assigns its `seq`). */
  | { kind: 'add'; entry: Omit<QueueEntry, 'seq'> }
  /** Replace the unsent entry `entry.seq` with the edit merged in. */
  | { kind: 'put'; entry: QueueEntry }
  /** Remove the unsent create `seq`: the edit deleted a document the server never saw. */
  | { kind: 'cancel'; seq: number };

/**
 * How `op` joins `entries` (the queued entries of its document, oldest
 * first): merged into the newest when that one was never sent and the two
 * compose, cancelling an unsent create it deletes, else a new entry.
 */
export function planEnqueue(entries: readonly QueueEntry[], op: NewOp): EnqueuePlan {
  const newest = entries[entries.length - 1];
  if (newest && !newest.sent && !newest.failed) {
    const merged = coalesce(newest, op, entries.length === 1);
    if (merged !== undefined) return merged;
  }
  return { kind: 'add', entry: { ...op, sent: false, attempts: 0, nextAttemptAt: 0, failed: false } };
}

function coalesce(earlier: QueueEntry, later: NewOp, earlierIsAlone: boolean): EnqueuePlan | undefined {
  if (later.baseVersion !== undefined && later.baseVersion !== earlier.baseVersion) return undefined;
  // One entry now carries both edits: it is as urgent as the more urgent.
  const merged = (data: JsonObject): EnqueuePlan => ({
    kind: 'put',
    entry: withPriority({ ...earlier, data, timestamp: later.timestamp }, moreUrgent(earlier.priority, later.priority)),
  });
  if ((earlier.action === 'update' || earlier.action === 'upsert') && later.action === 'update') {
    if (!earlier.data || !later.data) return undefined;
    // An upsert's data is the whole document when the server has none: a
    // removal merged into it would be stored as a null member instead.
    if (earlier.action === 'upsert' && hasNull(later.data)) return undefined;
    const data = composeMergePatches(earlier.data, later.data);
    return data === undefined ? undefined : merged(data);
  }
  if (earlier.action === 'create' && later.action === 'update') {
    if (!earlier.data || !later.data) return undefined;
    return merged(applyMergePatch(earlier.data, later.data));
  }
  if (earlier.action === 'create' && later.action === 'delete' && earlierIsAlone) {
    return { kind: 'cancel', seq: earlier.seq };
  }
  return undefined;
}

/**
 * The entries to send now, at most `max`, high before normal before low
 * and oldest first within a priority: the oldest entry of each document,
 * when it is not failed, not in flight and its backoff has passed. A
 * document counts as urgent as its most urgent entry (a high edit behind a
 * low one takes that one along first); documents less urgent than
 * `lowest` stay (a metered link passes `normal`). `entries` must be in
 * queue order; give every entry, not only the heads, for the urgency of
 * documents to count.
 */
export function readyEntries(
  entries: Iterable<QueueEntry>,
  inFlight: ReadonlySet<number>,
  nowMs: number,
  max: number,
  lowest: Priority = 'low',
): QueueEntry[] {
  if (max <= 0) return [];
  const heads = new Map<string, { head: QueueEntry; rank: number }>();
  for (const entry of entries) {
    const doc = docKey(entry.collection, entry.id);
    const known = heads.get(doc);
    if (known) known.rank = Math.min(known.rank, priorityRank(entry.priority));
    else heads.set(doc, { head: entry, rank: priorityRank(entry.priority) });
  }
  const byRank: QueueEntry[][] = [[], [], []];
  const limit = priorityRank(lowest);
  for (const { head, rank } of heads.values()) {
    if (rank > limit) continue;
    if (head.failed || head.unsaved || inFlight.has(head.seq) || head.nextAttemptAt > nowMs) continue;
    byRank[rank]?.push(head);
  }
  return byRank.flat().slice(0, max);
}

/** The earliest time a blocked-by-backoff entry becomes ready, if any. */
export function nextAttemptAt(entries: Iterable<QueueEntry>, nowMs: number): number | undefined {
  let earliest: number | undefined;
  for (const entry of entries) {
    if (!entry.failed && entry.nextAttemptAt > nowMs) {
      earliest = earliest === undefined ? entry.nextAttemptAt : Math.min(earliest, entry.nextAttemptAt);
    }
  }
  return earliest;
}

/** How retries back off. */
export interface BackoffPolicy {
  /** The first retry's ceiling. */
  baseDelayMs: number;
  /** No retry waits longer than this. */
  maxDelayMs: number;
  /** Attempts before an entry is failed. */
  maxAttempts: number;
}

/** The delay before retry number `attempt` (1-based): full jitter, `random() * min(max, base * 2^(attempt-1))`. */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

/**
 * The entry after a transient failure at `nowMs`: one more attempt, the
 * next one after the backoff (and never before the server's
 * `retryAfterMs`), failed when out of attempts.
 */
export function afterFailure(
  entry: QueueEntry,
  reason: string,
  nowMs: number,
  policy: BackoffPolicy,
  random: () => number,
  retryAfterMs = 0,
): QueueEntry {
  const attempts = entry.attempts + 1;
  const delay = Math.max(retryAfterMs, backoffDelay(attempts, policy, random));
  return {
    ...entry,
    attempts,
    lastError: reason,
    nextAttemptAt: nowMs + delay,
    failed: attempts >= policy.maxAttempts,
  };
}

/** A failed entry given a fresh start by `retry`. */
export function retried(entry: QueueEntry): QueueEntry {
  return { ...entry, attempts: 0, nextAttemptAt: 0, failed: false };
}

/** The operation as it goes out. An update or delete queued before its document had a server version (its create was still on the way) was made on the version that create produced: `knownVersion` now, since a document's entries go out one at a time. */
export function outgoing(entry: QueueEntry, namespace: string, knownVersion: number | undefined): WireOperation {
  const op: WireOperation = {
    opId: entry.opId,
    action: entry.action,
    collection: entry.collection,
    namespace,
    id: entry.id,
    timestamp: entry.timestamp,
  };
  if (entry.data !== undefined) op.data = entry.data;
  if (entry.priority !== undefined && entry.priority !== 'normal') op.priority = entry.priority;
  const base =
    entry.baseVersion ?? (entry.action === 'update' || entry.action === 'delete' ? knownVersion : undefined);
  if (base !== undefined) op.baseVersion = base;
  return op;
}

function hasNull(patch: JsonObject): boolean {
  return Object.values(patch).some((value) => value === null || (isObject(value) && hasNull(value)));
}

/** The key of a document within one namespace. */
export function docKey(collection: string, id: string): string {
  return `${collection}\u0000${id}`;
}
