// A JSON value written with sorted keys: one string per value, whatever the
// key order (and `-0` reads as `0`, as in JSON), for the unit tests'
// comparisons.

import { isObject, type JsonValue } from '../../src/core/json.js';

/** `value` as text with object keys sorted; `undefined` as `'undefined'`. */
export function canon(value: JsonValue | undefined): string {
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return `[${value.map(canon).join(',')}]`;
  if (isObject(value)) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canon(value[key])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
