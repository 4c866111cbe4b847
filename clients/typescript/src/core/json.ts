// JSON values and the operations the sync logic needs on them: deep
// equality, RFC 7386 merge patches (the protocol's delta format: only the
// changed fields, `null` removes one, nested objects merge) and a total
// order of values for `orderBy`.

/** Any JSON value. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
/** A JSON object: a document's data, or a merge patch. */
export interface JsonObject {
  [key: string]: JsonValue;
}

/** Whether `value` is a plain JSON object (not an array, not null). */
export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Structural equality of two JSON values; key order does not matter. */
export function deepEqual(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
    return true;
  }
  if (isObject(a)) {
    if (!isObject(b)) return false;
    const keys = Object.keys(a);
    if (keys.length !== Object.keys(b).length) return false;
    for (const key of keys) {
      if (!Object.prototype.hasOwnProperty.call(b, key) || !deepEqual(a[key], b[key])) return false;
    }
    return true;
  }
  return false;
}

/** `patch` applied to `target` (RFC 7386); neither argument is modified. */
export function applyMergePatch(target: JsonObject, patch: JsonObject): JsonObject {
  const result: JsonObject = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete result[key];
    } else if (isObject(value)) {
      const current = result[key];
      result[key] = applyMergePatch(isObject(current) ? current : {}, value);
    } else {
      result[key] = value;
    }
  }
  return result;
}

/**
 * The merge patch that turns `before` into `after`: changed and added
 * fields, `null` for removed ones, nested objects diffed recursively.
 * Empty when they are equal.
 */
export function diffMergePatch(before: JsonObject, after: JsonObject): JsonObject {
  const patch: JsonObject = {};
  for (const key of Object.keys(before)) {
    if (!Object.prototype.hasOwnProperty.call(after, key)) patch[key] = null;
  }
  for (const [key, value] of Object.entries(after)) {
    const old = before[key];
    if (deepEqual(old, value)) continue;
    if (isObject(old) && isObject(value)) {
      patch[key] = diffMergePatch(old, value);
    } else {
      patch[key] = value;
    }
  }
  return patch;
}

function rank(value: JsonValue | undefined): number {
  if (value === undefined || value === null) return 0;
  if (typeof value === 'boolean') return 1;
  if (typeof value === 'number') return 2;
  if (typeof value === 'string') return 3;
  if (Array.isArray(value)) return 4;
  return 5;
}

/**
 * Orders JSON values: missing or null, then booleans, numbers, strings,
 * arrays and objects; within a kind by value (the Rust SDK's order).
 */
export function compareValues(a: JsonValue | undefined, b: JsonValue | undefined): number {
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra < rb ? -1 : 1;
  if (typeof a === 'boolean' && typeof b === 'boolean') return a === b ? 0 : a ? 1 : -1;
  if (typeof a === 'number' && typeof b === 'number') return a === b ? 0 : a < b ? -1 : 1;
  if (typeof a === 'string' && typeof b === 'string') return a === b ? 0 : a < b ? -1 : 1;
  if (ra === 0) return 0;
  const sa = JSON.stringify(a);
  const sb = JSON.stringify(b);
  return sa === sb ? 0 : sa < sb ? -1 : 1;
}

/**
 * One patch with the effect of applying `first` then `second` to any
 * object, or `undefined` where no single merge patch has that effect
 * (`first` sets a member to a non-object and `second` patches it as an
 * object, which would merge into whatever the target holds).
 */
export function composeMergePatches(first: JsonObject, second: JsonObject): JsonObject | undefined {
  const result: JsonObject = { ...first };
  for (const [key, value] of Object.entries(second)) {
    const earlier = result[key];
    if (isObject(value) && earlier !== undefined) {
      if (!isObject(earlier)) return undefined;
      const composed = composeMergePatches(earlier, value);
      if (composed === undefined) return undefined;
      result[key] = composed;
    } else {
      result[key] = value;
    }
  }
  return result;
}
