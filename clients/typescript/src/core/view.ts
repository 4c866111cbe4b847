// The document-level sync decisions as pure functions, the same rules as
// the Rust SDK's: the local view of a document (the server's last known
// state with the pending operations replayed on top), what an incoming
// change does to the known server state, what an acknowledgement does, and
// what a `save` becomes on the wire.

import { applyMergePatch, diffMergePatch, type JsonObject } from './json.js';
import type { Action, Change, OpResult } from './protocol.js';

/** The server's last known state of one document. */
export interface ServerDoc {
  /** The document's data; empty for a tombstone. */
  data: JsonObject;
  /** Its version on the server. */
  version: number;
  /** Whether the server has it deleted. */
  deleted: boolean;
}

/** The part of a queued operation the view needs. */
export interface PendingEdit {
  action: Action;
  data?: JsonObject | undefined;
}

/**
 * The local view of a document: the server's state with `pending` (the
 * document's queued operations, oldest first) replayed on top. A pending
 * create (or an upsert of an absent document) shows it, a delete hides it,
 * updates apply as merge patches; an update of an absent document shows
 * nothing (the server will refuse it).
 */
export function localView(server: ServerDoc | undefined, pending: readonly PendingEdit[]): JsonObject | undefined {
  let doc = server && !server.deleted ? server.data : undefined;
  for (const op of pending) {
    const data = op.data ?? {};
    switch (op.action) {
      case 'create':
        doc = data;
        break;
      case 'upsert':
        doc = doc === undefined ? data : applyMergePatch(doc, data);
        break;
      case 'update':
        doc = doc === undefined ? undefined : applyMergePatch(doc, data);
        break;
      case 'delete':
        doc = undefined;
        break;
    }
  }
  return doc;
}

/**
 * The known server state after an incoming change, or `undefined` when the
 * change is not newer than what is known (a replay after a resume, or the
 * echo of our own acknowledged write).
 */
export function applyChange(known: ServerDoc | undefined, change: Change): ServerDoc | undefined {
  const knownVersion = known?.version ?? 0;
  if (change.version <= knownVersion) return undefined;
  switch (change.op) {
    case 'delete':
      return { data: {}, version: change.version, deleted: true };
    case 'insert':
      return { data: change.data ?? change.delta, version: change.version, deleted: false };
    case 'update':
      if (change.data) return { data: change.data, version: change.version, deleted: false };
      // Without the whole document the delta applies only to the version right before it.
      if (known && known.version + 1 === change.version) {
        return { data: applyMergePatch(known.data, change.delta), version: change.version, deleted: false };
      }
      return undefined;
  }
}

/** What an acknowledgement does to the known server state. */
export type AckEffect =
  | { kind: 'apply'; doc: ServerDoc }
  /** The outcome cannot be derived locally: read the document from the server. */
  | { kind: 'fetch' }
  /** Nothing to change (an old duplicate, or already known). */
  | { kind: 'keep' };

/** The operation an acknowledgement answers, as far as `ackEffect` needs it. */
export interface AckedOp {
  action: Action;
  data?: JsonObject | undefined;
  baseVersion?: number | undefined;
}

/**
 * How `result` (the answer to `op`) changes `known`: a `merged` answer (or
 * the replay of one) carries the document; a `success` or `duplicate` of an
 * operation made on the known version, that made the change right after it,
 * is `op` applied to it; anything else needs a read.
 */
export function ackEffect(known: ServerDoc | undefined, op: AckedOp, result: OpResult): AckEffect {
  const knownVersion = known?.version ?? 0;
  const version = result.version;
  if (version === undefined) return { kind: 'fetch' };
  if (version <= knownVersion) return { kind: 'keep' };
  // A replay repeats the first answer: one that was merged or left a
  // conflict says what the document became, not that `op` applied.
  const firstWasResolved =
    result.status === 'duplicate' && (result.data !== undefined || result.conflictId !== undefined);
  if (result.status === 'merged' || firstWasResolved) {
    // An empty document may be a delete that won over the edit: ask the server.
    if (result.data && Object.keys(result.data).length > 0) {
      return { kind: 'apply', doc: { data: result.data, version, deleted: false } };
    }
    return { kind: 'fetch' };
  }
  // Without a seq the operation changed nothing, and the version is someone else's.
  const plain = (result.status === 'success' || result.status === 'duplicate') && result.seq !== undefined;
  // An operation made on an older version than the known one was merged by
  // the server from that older version: its patch does not say what came out.
  const onKnown = op.action === 'delete' || op.baseVersion === undefined || op.baseVersion === knownVersion;
  if (!plain || !onKnown || version !== knownVersion + 1) return { kind: 'fetch' };
  const data = op.data ?? {};
  const live = known && !known.deleted ? known.data : undefined;
  switch (op.action) {
    case 'delete':
      return { kind: 'apply', doc: { data: {}, version, deleted: true } };
    case 'create':
      return { kind: 'apply', doc: { data, version, deleted: false } };
    case 'upsert':
      return { kind: 'apply', doc: { data: live ? applyMergePatch(live, data) : data, version, deleted: false } };
    case 'update':
      return live
        ? { kind: 'apply', doc: { data: applyMergePatch(live, data), version, deleted: false } }
        : { kind: 'fetch' };
  }
}

/**
 * What a `save` of `next` becomes, given the current local view: a create
 * for an id this client generated, an upsert for one the caller chose
 * (another device may have created it), a merge patch for a document the
 * view has; `undefined` when nothing changes.
 */
export function planSave(
  current: JsonObject | undefined,
  next: JsonObject,
  generatedId: boolean,
): { action: Action; data: JsonObject } | undefined {
  if (current === undefined) return { action: generatedId ? 'create' : 'upsert', data: next };
  const patch = diffMergePatch(current, next);
  return Object.keys(patch).length === 0 ? undefined : { action: 'update', data: patch };
}
