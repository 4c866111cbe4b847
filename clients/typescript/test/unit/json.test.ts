// JSON operations (src/core/json.ts): deep equality, RFC 7386 merge patch apply/diff/compose and the order of values.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  applyMergePatch,
  compareValues,
  composeMergePatches,
  deepEqual,
  diffMergePatch,
  isObject,
  type JsonObject,
  type JsonValue,
} from '../../src/core/json.js';
import { canon } from './canon.js';

const RUNS = { numRuns: 300 };


/**
 * Whether an object has a `null` member, itself or in an object nested in it through
 * objects only (arrays are set whole by a patch, so what they hold does not count).
 */
function hasNullMember(value: JsonObject): boolean {
  return Object.values(value).some((member) => member === null || (isObject(member) && hasNullMember(member)));
}

/** `value` without its `null` object members, recursively through objects (arrays are kept whole). */
function stripNulls(value: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [key, member] of Object.entries(value)) {
    if (member === null) continue;
    // An own data property whatever the key (`__proto__` included).
    Object.defineProperty(out, key, { value: isObject(member) ? stripNulls(member) : member, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** `value` with its members in reverse order, recursively: the same JSON value. */
function reversed(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(reversed);
  if (!isObject(value)) return value;
  const out: JsonObject = {};
  for (const key of Object.keys(value).reverse()) {
    Object.defineProperty(out, key, { value: reversed(value[key]!), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * A JSON object from `fc.jsonValue`: any keys, including the ones fast-check favours
 * because they break code (`__proto__`, `constructor`, `toString`, ...).
 */
const anyObject: fc.Arbitrary<JsonObject> = fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<JsonValue>, {
  maxKeys: 6,
  noNullPrototype: true,
});

/** Objects over a few keys, so that two of them touch the same members often; nulls included. */
const smallValue: fc.Arbitrary<JsonValue> = fc.letrec<{ value: JsonValue; object: JsonObject }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom<JsonValue>(null, true, false, 0, 1, 'x', 'y', [], [1], [null], [{ a: null }]),
    tie('object'),
  ),
  object: fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd'), tie('value'), { maxKeys: 4, noNullPrototype: true }),
})).value;
const smallObject: fc.Arbitrary<JsonObject> = fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd'), smallValue, {
  maxKeys: 4,
  noNullPrototype: true,
});

describe('deepEqual', () => {
  const check = (a: JsonValue | undefined, b: JsonValue | undefined, expected: boolean) => {
    expect(deepEqual(a, b), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).toBe(expected);
    expect(deepEqual(b, a), `${JSON.stringify(b)} vs ${JSON.stringify(a)}`).toBe(expected);
  };

  it('compares structurally, ignoring key order', () => {
    check({ a: 1, b: [1, { c: 'x' }] }, { b: [1, { c: 'x' }], a: 1 }, true);
    check({ a: 1 }, { a: 1, b: 2 }, false);
    check({ a: undefined as unknown as JsonValue }, { b: undefined as unknown as JsonValue }, false);
    check([1, 2], [2, 1], false);
    check([1, 2], [1, 2, 3], false);
    check([], {}, false);
    check(null, undefined, false);
    check(null, null, true);
    check(undefined, undefined, true);
    check(null, {}, false);
    check(0, false, false);
    check('1', 1, false);
    check({ a: null }, {}, false);
    check({ a: { b: { c: [1] } } }, { a: { b: { c: [1] } } }, true);
    check({ a: { b: { c: [1] } } }, { a: { b: { c: [2] } } }, false);
  });

  it('agrees with a canonical serialisation', () => {
    fc.assert(
      fc.property(smallValue, smallValue, (a, b) => {
        expect(deepEqual(a, b)).toBe(canon(a) === canon(b));
      }),
      RUNS,
    );
  });
});

describe('applyMergePatch', () => {
  const check = (target: JsonObject, patch: JsonObject, expected: JsonObject) => {
    Object.freeze(target);
    Object.freeze(patch);
    expect(applyMergePatch(target, patch), `${JSON.stringify(target)} + ${JSON.stringify(patch)}`).toEqual(expected);
  };

  it('follows RFC 7386 appendix A (the cases with an object target and patch)', () => {
    check({ a: 'b' }, { a: 'c' }, { a: 'c' });
    check({ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' });
    check({ a: 'b' }, { a: null }, {});
    check({ a: 'b', b: 'c' }, { a: null }, { b: 'c' });
    check({ a: ['b'] }, { a: 'c' }, { a: 'c' });
    check({ a: 'c' }, { a: ['b'] }, { a: ['b'] });
    check({ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } });
    check({ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] });
    check({ e: null }, { a: 1 }, { e: null, a: 1 });
    check({}, { a: { bb: { ccc: null } } }, { a: { bb: {} } });
  });

  it('merges nested objects and replaces everything else whole', () => {
    check({ a: { x: 1, y: 2 } }, { a: { y: null, z: 3 } }, { a: { x: 1, z: 3 } });
    check({ a: 1 }, { a: { b: 2 } }, { a: { b: 2 } });
    check({ a: { b: 1 } }, { a: 5 }, { a: 5 });
    check({ a: [1, 2] }, { a: { b: null, c: 1 } }, { a: { c: 1 } });
    check({ a: 1 }, {}, { a: 1 });
    check({ a: 1 }, { missing: null }, { a: 1 });
    check({ a: [{ b: null }] }, { c: [null] }, { a: [{ b: null }], c: [null] });
  });

  it('modifies neither argument', () => {
    fc.assert(
      fc.property(smallObject, smallObject, (target, patch) => {
        const before = [canon(target), canon(patch)];
        applyMergePatch(target, patch);
        expect([canon(target), canon(patch)]).toEqual(before);
      }),
      RUNS,
    );
  });

  it('is idempotent: applying a patch twice is applying it once', () => {
    fc.assert(
      fc.property(smallObject, smallObject, (target, patch) => {
        const once = applyMergePatch(target, patch);
        expect(canon(applyMergePatch(once, patch))).toBe(canon(once));
      }),
      RUNS,
    );
  });

  it('removes null members, replaces with non-objects, merges objects, keeps the rest', () => {
    fc.assert(
      fc.property(smallObject, smallObject, (target, patch) => {
        const result = applyMergePatch(target, patch);
        for (const key of new Set([...Object.keys(target), ...Object.keys(patch)])) {
          const value = patch[key];
          if (value === undefined) expect(canon(result[key])).toBe(canon(target[key]));
          else if (value === null) expect(Object.prototype.hasOwnProperty.call(result, key)).toBe(false);
          else if (!isObject(value)) expect(canon(result[key])).toBe(canon(value));
          else {
            const earlier = target[key];
            expect(canon(result[key])).toBe(canon(applyMergePatch(isObject(earlier) ? earlier : {}, value)));
          }
        }
      }),
      RUNS,
    );
  });

  // A document may have a member named `__proto__` (JSON.parse makes it an own key, the
  // server stores it like any other): it is data, never the object's prototype.
  it('keeps members named __proto__, constructor or toString like any other', () => {
    const parse = (text: string) => JSON.parse(text) as JsonObject;
    const plain = (value: JsonObject) => Object.getPrototypeOf(value) === Object.prototype;
    const result = applyMergePatch({}, parse('{"__proto__": {"x": 1}}'));
    expect(Object.keys(result)).toEqual(['__proto__']);
    expect(plain(result)).toBe(true);
    expect((result as Record<string, unknown>)['x']).toBeUndefined();
    expect(canon(result)).toBe('{"__proto__":{"x":1}}');
    expect(canon(applyMergePatch(parse('{"__proto__": {"x": 1}}'), parse('{"__proto__": {"y": 2}}')))).toBe('{"__proto__":{"x":1,"y":2}}');
    expect(canon(applyMergePatch(parse('{"__proto__": 1}'), parse('{"__proto__": null}')))).toBe('{}');
    expect(canon(applyMergePatch({}, parse('{"__proto__": 5, "constructor": {"a": 1}, "toString": 2}')))).toBe(
      '{"__proto__":5,"constructor":{"a":1},"toString":2}',
    );
    const diff = diffMergePatch({}, parse('{"__proto__": {}}'));
    expect(canon(diff)).toBe('{"__proto__":{}}');
    expect(plain(diff)).toBe(true);
    expect(canon(diffMergePatch(parse('{"__proto__": {"a": 1}}'), {}))).toBe('{"__proto__":null}');
    expect(canon(composeMergePatches({}, parse('{"__proto__": {"a": 1}}')))).toBe('{"__proto__":{"a":1}}');
    expect(canon(composeMergePatches({}, parse('{"toString": {"a": 1}}')))).toBe('{"toString":{"a":1}}');
    expect(deepEqual({}, parse('{"__proto__": {}}'))).toBe(false);
    expect(deepEqual(parse('{"constructor": 1}'), parse('{"toString": 1}'))).toBe(false);
  });
});

describe('diffMergePatch', () => {
  const check = (before: JsonObject, after: JsonObject, expected: JsonObject) => {
    const patch = diffMergePatch(before, after);
    expect(patch, `${JSON.stringify(before)} -> ${JSON.stringify(after)}`).toEqual(expected);
    expect(applyMergePatch(before, patch)).toEqual(after);
  };

  it('lists the changed members only', () => {
    check(
      { title: 'a', done: false, tags: ['x'], meta: { n: 1, m: 2 } },
      { title: 'a', done: true, meta: { n: 1, m: 3 } },
      { done: true, tags: null, meta: { m: 3 } },
    );
    check({ a: 1 }, { a: 1 }, {});
    check({}, {}, {});
    check({}, { a: { b: 1 } }, { a: { b: 1 } });
    check({ a: { b: 1 } }, {}, { a: null });
    check({ a: { b: 1 } }, { a: 1 }, { a: 1 });
    check({ a: 1 }, { a: { b: 1 } }, { a: { b: 1 } });
    check({ a: [1, 2] }, { a: [1] }, { a: [1] });
    check({ a: { b: { c: 1, d: 2 } } }, { a: { b: { c: 1 } } }, { a: { b: { d: null } } });
    check({ a: { b: 1 }, c: 2 }, { c: 2, a: { b: 1 } }, {});
    check({}, { a: [{ b: null }, null] }, { a: [{ b: null }, null] });
  });

  it('cannot set a member to null: it removes it instead', () => {
    const patch = diffMergePatch({ a: 1 }, { a: null });
    expect(patch).toEqual({ a: null });
    expect(applyMergePatch({ a: 1 }, patch)).toEqual({});
  });

  it('round-trips: applyMergePatch(a, diffMergePatch(a, b)) equals b when b has no null member', () => {
    fc.assert(
      fc.property(anyObject, anyObject.map(stripNulls), (a, b) => {
        expect(canon(applyMergePatch(a, diffMergePatch(a, b)))).toBe(canon(b));
      }),
      RUNS,
    );
    fc.assert(
      fc.property(smallObject, smallObject.filter((b) => !hasNullMember(b)), (a, b) => {
        expect(canon(applyMergePatch(a, diffMergePatch(a, b)))).toBe(canon(b));
      }),
      RUNS,
    );
  });

  it('turns a into b without its null members when a has none', () => {
    fc.assert(
      fc.property(anyObject.map(stripNulls), anyObject, (a, b) => {
        expect(canon(applyMergePatch(a, diffMergePatch(a, b)))).toBe(canon(stripNulls(b)));
      }),
      RUNS,
    );
  });

  it('is empty exactly when the two are equal', () => {
    fc.assert(
      fc.property(smallObject, smallObject, (a, b) => {
        expect(Object.keys(diffMergePatch(a, b)).length === 0).toBe(deepEqual(a, b));
        expect(diffMergePatch(a, a)).toEqual({});
      }),
      RUNS,
    );
  });
});

describe('composeMergePatches', () => {
  const check = (first: JsonObject, second: JsonObject, expected: JsonObject | undefined) => {
    expect(composeMergePatches(first, second), `${JSON.stringify(first)} then ${JSON.stringify(second)}`).toEqual(expected);
  };

  it('composes as the Rust merge_patch::compose does', () => {
    check({ a: 2, o: { x: null }, n: 1 }, { a: null, o: { z: 3 }, n: 2 }, { a: null, o: { x: null, z: 3 }, n: 2 });
    check({ x: 1, n: { a: 1 } }, { y: 2, n: { b: 2 }, x: null }, { x: null, y: 2, n: { a: 1, b: 2 } });
    check({ a: 1 }, {}, { a: 1 });
    check({}, { a: { b: null } }, { a: { b: null } });
    check({ a: { b: 1 } }, { a: 7 }, { a: 7 });
    check({ a: { b: { c: 1 } } }, { a: { b: { d: 2 } } }, { a: { b: { c: 1, d: 2 } } });
  });

  it('has no answer where a member set to a non-object is then patched as an object', () => {
    check({ a: 2, o: { x: null }, n: 1 }, { n: { k: 1 } }, undefined);
    check({ n: null }, { n: { b: 2 } }, undefined);
    check({ n: [1] }, { n: { b: 2 } }, undefined);
    check({ o: { n: 'x' } }, { o: { n: { b: 2 } } }, undefined);
  });

  it('has the effect of applying the first patch, then the second, to any target', () => {
    fc.assert(
      fc.property(smallObject, smallObject, smallObject, (target, first, second) => {
        const composed = composeMergePatches(first, second);
        fc.pre(composed !== undefined);
        const inTurn = applyMergePatch(applyMergePatch(target, first), second);
        expect(canon(applyMergePatch(target, composed))).toBe(canon(inTurn));
      }),
      { numRuns: 500 },
    );
  });

  it('is defined when no member set by the first is patched as an object by the second', () => {
    fc.assert(
      fc.property(smallObject, smallObject, (first, second) => {
        const blocked = (a: JsonObject, b: JsonObject): boolean =>
          Object.entries(b).some(([key, value]) => {
            const earlier = a[key];
            if (!isObject(value) || earlier === undefined) return false;
            return !isObject(earlier) || blocked(earlier, value);
          });
        expect(composeMergePatches(first, second) === undefined).toBe(blocked(first, second));
      }),
      RUNS,
    );
  });

  it('modifies neither argument', () => {
    fc.assert(
      fc.property(smallObject, smallObject, (first, second) => {
        const before = [canon(first), canon(second)];
        composeMergePatches(first, second);
        expect([canon(first), canon(second)]).toEqual(before);
      }),
      RUNS,
    );
  });
});

describe('compareValues', () => {
  const check = (a: JsonValue | undefined, b: JsonValue | undefined, expected: -1 | 0 | 1) => {
    expect(Math.sign(compareValues(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).toBe(expected);
    expect(Math.sign(compareValues(b, a)), `${JSON.stringify(b)} vs ${JSON.stringify(a)}`).toBe(-expected || 0);
  };

  it('orders missing and null, then booleans, numbers, strings, arrays, objects', () => {
    const ladder: (JsonValue | undefined)[] = [undefined, false, true, -5, 0, 2.5, 10, '', 'a', 'b', 'ba', [1], {}];
    for (let i = 0; i < ladder.length; i++) {
      for (let j = i + 1; j < ladder.length; j++) check(ladder[i], ladder[j], -1);
    }
    check(undefined, null, 0);
    check(null, false, -1);
    check(1, 1, 0);
    check('x', 'x', 0);
    check(true, true, 0);
    check([1, 2], [1, 2], 0);
    check({ a: 1 }, { a: 1 }, 0);
    check(10, '9', -1);
    check(['z'], { a: 1 }, -1);
    // Arrays and objects of one kind compare by their JSON text, as in Rust.
    check([1], [], -1);
    check([1, 2], [2], -1);
    check({ a: 1 }, { a: 2 }, -1);
    check('Z', 'a', -1);
  });

  it('is a total order of JSON values: antisymmetric, transitive, zero exactly for equal values', () => {
    fc.assert(
      fc.property(smallValue, smallValue, smallValue, (a, b, c) => {
        expect(Math.sign(compareValues(a, b))).toBe(-Math.sign(compareValues(b, a)) || 0);
        if (compareValues(a, b) <= 0 && compareValues(b, c) <= 0) expect(compareValues(a, c)).toBeLessThanOrEqual(0);
        expect(compareValues(a, b) === 0).toBe(deepEqual(a, b));
        expect(compareValues(a, reversed(a))).toBe(0);
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<JsonValue>, fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<JsonValue>, (a, b) => {
        expect(compareValues(a, b) === 0, `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).toBe(deepEqual(a, b));
        expect(compareValues(a, reversed(a))).toBe(0);
      }),
      RUNS,
    );
  });

  // The Rust SDK compares arrays and objects by their serde_json text, whose object
  // keys are sorted: key order does not count.
  it('compares objects as the Rust SDK does, whatever their key order', () => {
    check({ b: 1, a: 2 }, { a: 2, b: 1 }, 0);
    check({ b: 0, a: 1 }, { a: 2 }, -1);
    check([{ b: 1, a: 2 }], [{ a: 2, b: 1 }], 0);
  });

  // Rust compares strings by code point (UTF-8 bytes), not by UTF-16 unit: a character
  // above U+FFFF sorts after every character of the basic plane.
  it('orders strings by code point, as the Rust SDK does', () => {
    check('\uffff', '\u{10000}', -1);
    check('\ue000', '\u{1f600}', -1);
    check('a\u{10000}', 'a\uffff', 1);
    check('\u{10000}', '\u{10001}', -1);
    check('ab', 'abc', -1);
    check('', 'a', -1);
  });
});
