// Live-query matching and ordering as pure functions: `where` conditions
// (equality, `!=`, `<`, `<=`, `>`, `>=`, `in`) on top-level fields,
// `orderBy` with the Rust SDK's order of JSON values (ties broken by id),
// `limit`.

import { compareValues, deepEqual, type JsonObject, type JsonValue } from './json.js';

/** A comparison a `where` condition makes. */
export type WhereOp = '==' | '!=' | '<' | '<=' | '>' | '>=' | 'in';
/** The direction of an `orderBy`. */
export type Direction = 'asc' | 'desc';

/** One condition: the document's top-level `field` compared with `value`. */
export interface Condition {
  field: string;
  op: WhereOp;
  value: JsonValue;
}

/** What a live query asks for. */
export interface QuerySpec {
  where: readonly Condition[];
  orderBy: readonly (readonly [string, Direction])[];
  limit?: number | undefined;
}

const OPS: ReadonlySet<string> = new Set(['==', '!=', '<', '<=', '>', '>=', 'in']);

/** Whether `op` is a comparison `where` accepts. */
export function isWhereOp(op: unknown): op is WhereOp {
  return typeof op === 'string' && OPS.has(op);
}

function sameKind(a: JsonValue | undefined, b: JsonValue): boolean {
  if (a === undefined || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) return Array.isArray(a) && Array.isArray(b);
  return typeof a === typeof b;
}

/**
 * Whether `doc` satisfies `condition`. A missing field counts as `null`
 * (as the server's filters read it); ordering comparisons hold only between
 * values of the same kind (a string is neither below nor above a number).
 */
export function matchesCondition(doc: JsonObject, condition: Condition): boolean {
  const actual = Object.prototype.hasOwnProperty.call(doc, condition.field) ? doc[condition.field] : null;
  const { value } = condition;
  switch (condition.op) {
    case '==':
      return deepEqual(actual, value);
    case '!=':
      return !deepEqual(actual, value);
    case 'in':
      return Array.isArray(value) && value.some((candidate) => deepEqual(actual, candidate));
    case '<':
      return sameKind(actual, value) && compareValues(actual, value) < 0;
    case '<=':
      return sameKind(actual, value) && compareValues(actual, value) <= 0;
    case '>':
      return sameKind(actual, value) && compareValues(actual, value) > 0;
    case '>=':
      return sameKind(actual, value) && compareValues(actual, value) >= 0;
  }
}

/** Whether `doc` satisfies every condition of `spec`. */
export function matches(doc: JsonObject, spec: QuerySpec): boolean {
  return spec.where.every((condition) => matchesCondition(doc, condition));
}

/** Compares two documents by `spec`'s order, then by id. */
export function compareDocs(a: JsonObject, b: JsonObject, spec: QuerySpec): number {
  for (const [field, direction] of spec.orderBy) {
    const ordering = compareValues(a[field], b[field]);
    if (ordering !== 0) return direction === 'desc' ? -ordering : ordering;
  }
  return compareValues(a['id'], b['id']);
}

/** The query's result from the documents of a collection (each with its `id`). */
export function runQuery(docs: Iterable<JsonObject>, spec: QuerySpec): JsonObject[] {
  const result: JsonObject[] = [];
  for (const doc of docs) if (matches(doc, spec)) result.push(doc);
  result.sort((a, b) => compareDocs(a, b, spec));
  if (spec.limit !== undefined && result.length > spec.limit) result.length = spec.limit;
  return result;
}
