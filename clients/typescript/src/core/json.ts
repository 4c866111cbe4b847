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
      if (!Object.prototype.hasOwnProperty.call(b, key) || !deepEqual(member(a, key), member(b, key))) return false;
    }
    return true;
  }
  return false;
}

/** Sets a member as an own property, whatever its name (`__proto__` included, as JSON.parse makes it). */
function setMember(object: JsonObject, key: string, value: JsonValue): void {
  if (key === '__proto__') {
    Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    object[key] = value;
  }
}

/** A member's value, only when it is the object's own. */
function member(object: JsonObject, key: string): JsonValue | undefined {
  return Object.prototype.hasOwnProperty.call(object, key) ? object[key] : undefined;
}

/** `patch` applied to `target` (RFC 7386); neither argument is modified. */
export function applyMergePatch(target: JsonObject, patch: JsonObject): JsonObject {
  const result: JsonObject = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete result[key];
    } else if (isObject(value)) {
      const current = member(result, key);
      setMember(result, key, applyMergePatch(isObject(current) ? current : {}, value));
    } else {
      setMember(result, key, value);
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
    if (!Object.prototype.hasOwnProperty.call(after, key)) setMember(patch, key, null);
  }
  for (const [key, value] of Object.entries(after)) {
    const old = member(before, key);
    if (deepEqual(old, value)) continue;
    setMember(patch, key, isObject(old) && isObject(value) ? diffMergePatch(old, value) : value);
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
  if (typeof a === 'string' && typeof b === 'string') return compareStrings(a, b);
  if (ra === 0) return 0;
  return compareStrings(canonical(a), canonical(b));
}

/** Orders strings by code point (as Rust orders its UTF-8 strings), not by UTF-16 unit. */
export function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // A surrogate (a code point above U+FFFF) sorts after every other unit.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x < y ? -1 : 1;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

/** JSON text with object members sorted by key, as the server writes its values. */
function canonical(value: JsonValue | undefined): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (isObject(value)) {
    const keys = Object.keys(value).sort(compareStrings);
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonical(member(value, key))}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
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
    const earlier = member(result, key);
    if (isObject(value) && earlier !== undefined) {
      if (!isObject(earlier)) return undefined;
      const composed = composeMergePatches(earlier, value);
      if (composed === undefined) return undefined;
      setMember(result, key, composed);
    } else {
      setMember(result, key, value);
    }
  }
  return result;
}
