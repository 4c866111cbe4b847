// Live-query matching and ordering (src/core/query.ts): where conditions, orderBy with ties broken by id, limit.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { compareValues, type JsonObject, type JsonValue } from '../../src/core/json.js';
import { compareDocs, isWhereOp, matches, matchesCondition, runQuery, type Condition, type Direction, type QuerySpec, type WhereOp } from '../../src/core/query.js';

const spec = (where: Condition[] = [], orderBy: [string, Direction][] = [], limit?: number): QuerySpec => ({ where, orderBy, limit });
const ids = (docs: JsonObject[]) => docs.map((doc) => doc['id']);

describe('matchesCondition', () => {
  const check = (doc: JsonObject, field: string, op: WhereOp, value: JsonValue, expected: boolean) => {
    expect(matchesCondition(doc, { field, op, value }), `${JSON.stringify(doc)} ${field} ${op} ${JSON.stringify(value)}`).toBe(expected);
  };

  it('compares for equality structurally', () => {
    check({ n: 1 }, 'n', '==', 1, true);
    check({ n: 1 }, 'n', '==', '1', false);
    check({ n: 1 }, 'n', '!=', 2, true);
    check({ n: 1 }, 'n', '!=', 1, false);
    check({ t: [1, { a: 2 }] }, 't', '==', [1, { a: 2 }], true);
    check({ o: { a: 1, b: 2 } }, 'o', '==', { b: 2, a: 1 }, true);
    check({ o: { a: 1 } }, 'o', '==', { a: 1, b: 2 }, false);
    check({ n: null }, 'n', '==', null, true);
    check({ n: false }, 'n', '==', null, false);
    check({ n: 0 }, 'n', '==', false, false);
    check({}, 'n', '!=', 1, true);
    check({}, 'n', '==', 1, false);
  });

  it('finds values in a list, and nothing in something that is not one', () => {
    check({ n: 2 }, 'n', 'in', [1, 2, 3], true);
    check({ n: 4 }, 'n', 'in', [1, 2, 3], false);
    check({ n: { a: 1 } }, 'n', 'in', [{ a: 1 }], true);
    check({ n: 2 }, 'n', 'in', 2, false);
    check({ n: 2 }, 'n', 'in', [], false);
    check({}, 'n', 'in', [1], false);
  });

  it('orders only values of the same kind', () => {
    check({ n: 1 }, 'n', '<', 2, true);
    check({ n: 2 }, 'n', '<', 2, false);
    check({ n: 2 }, 'n', '<=', 2, true);
    check({ n: 3 }, 'n', '>', 2, true);
    check({ n: 2 }, 'n', '>=', 2, true);
    check({ n: 1 }, 'n', '>=', 2, false);
    check({ s: 'apple' }, 's', '<', 'banana', true);
    check({ s: 'B' }, 's', '>', 'a', false);
    check({ b: false }, 'b', '<', true, true);
    check({ t: [1] }, 't', '<', [2], true);
    check({ o: { a: 1 } }, 'o', '<', { a: 2 }, true);
    // A string is neither below nor above a number; missing and null order nothing.
    check({ n: '1' }, 'n', '<', 2, false);
    check({ n: '1' }, 'n', '>', 2, false);
    check({ n: 1 }, 'n', '<', '2', false);
    check({}, 'n', '<', 2, false);
    check({}, 'n', '>=', 2, false);
    check({ n: null }, 'n', '<=', null, false);
    check({ n: [1] }, 'n', '<', { a: 1 }, false);
    check({ n: { a: 1 } }, 'n', '>', [1], false);
    check({ n: true }, 'n', '>', 0, false);
  });

  // The Rust filter (sync-core query.rs, the server's `where` of subscriptions and
  // lists): "A missing field equals null".
  it('treats a missing field as null, as the Rust filter does', () => {
    check({}, 'gone', '==', null, true);
    check({}, 'gone', '!=', null, false);
    check({}, 'gone', 'in', [1, null], true);
    check({}, 'gone', '!=', 1, true);
    check({}, 'gone', '<=', null, false);
    check({ gone: 0 }, 'gone', '==', null, false);
    // Only the document's own members count.
    check({}, 'constructor', '==', null, true);
    check({}, 'toString', '!=', null, false);
  });
});

describe('matches and isWhereOp', () => {
  it('needs every condition (the Rust cases)', () => {
    const where: Condition[] = [
      { field: 'roomId', op: '==', value: '42' },
      { field: 'done', op: '==', value: false },
    ];
    expect(matches({ roomId: '42', done: false, x: 1 }, spec(where))).toBe(true);
    expect(matches({ roomId: '42', done: true }, spec(where))).toBe(false);
    expect(matches({ roomId: '42' }, spec(where))).toBe(false);
    expect(matches({}, spec())).toBe(true);
  });

  it('knows its operators', () => {
    for (const op of ['==', '!=', '<', '<=', '>', '>=', 'in']) expect(isWhereOp(op), op).toBe(true);
    for (const op of ['=', '===', 'IN', 'contains', '', null, 3, undefined]) expect(isWhereOp(op), String(op)).toBe(false);
  });
});

describe('runQuery', () => {
  const docs: JsonObject[] = [
    { id: 'a', room: '42', t: 3 },
    { id: 'b', room: '42', t: 9 },
    { id: 'c', room: '7', t: 5 },
    { id: 'd', room: '42' },
  ];

  it('filters, orders and limits (the Rust cases)', () => {
    const room: Condition[] = [{ field: 'room', op: '==', value: '42' }];
    expect(ids(runQuery(docs, spec(room, [['t', 'desc']])))).toEqual(['b', 'a', 'd']);
    expect(ids(runQuery(docs, spec([], [['t', 'asc']], 2)))).toEqual(['d', 'a']);
    expect(ids(runQuery(docs, spec()))).toEqual(['a', 'b', 'c', 'd']);
  });

  it('orders by several fields, breaks ties by id, and takes any limit', () => {
    const people: JsonObject[] = [
      { id: 'p3', team: 'x', age: 30 },
      { id: 'p1', team: 'y', age: 30 },
      { id: 'p2', team: 'x', age: 25 },
      { id: 'p0', team: 'x', age: 30 },
    ];
    expect(ids(runQuery(people, spec([], [['team', 'asc'], ['age', 'desc']])))).toEqual(['p0', 'p3', 'p2', 'p1']);
    expect(ids(runQuery(people, spec([], [['age', 'asc']])))).toEqual(['p2', 'p0', 'p1', 'p3']);
    expect(ids(runQuery(people, spec([], [], 0)))).toEqual([]);
    expect(ids(runQuery(people, spec([], [], 10)))).toEqual(['p0', 'p1', 'p2', 'p3']);
    expect(ids(runQuery(people, spec([{ field: 'age', op: '<', value: 30 }])))).toEqual(['p2']);
    expect(compareDocs(people[0]!, people[3]!, spec([], [['team', 'asc']]))).toBeGreaterThan(0);
    expect(compareDocs(people[0]!, people[0]!, spec([], [['team', 'asc']]))).toBe(0);
  });

  it('takes any iterable and leaves its input alone', () => {
    const input = [...docs];
    const result = runQuery(new Set(input), spec([], [['t', 'desc']], 2));
    expect(ids(result)).toEqual(['b', 'c']);
    expect(input).toEqual(docs);
    expect(result[0]).toBe(docs[1]);
  });

  const valueArb = fc.constantFrom<JsonValue | undefined>(undefined, null, true, false, -1, 0, 2, 2.5, '', 'a', 'b', '\u{1f600}', '\uffff', [1], [2], { k: 1 }, { k: 1, j: 2 }, { j: 2, k: 1 });
  const docsArb = fc
    .uniqueArray(fc.integer({ min: 0, max: 30 }), { maxLength: 12 })
    .chain((keys) =>
      fc.tuple(
        ...keys.map((key) =>
          fc.record({ n: valueArb, s: valueArb }).map(({ n, s }) => {
            const doc: JsonObject = { id: `d${key}` };
            if (n !== undefined) doc['n'] = n;
            if (s !== undefined) doc['s'] = s;
            return doc;
          }),
        ),
      ),
    );
  const conditionArb: fc.Arbitrary<Condition> = fc.record({
    field: fc.constantFrom('n', 's', 'id'),
    op: fc.constantFrom<WhereOp>('==', '!=', '<', '<=', '>', '>=', 'in'),
    value: fc.oneof(valueArb.map((value) => value ?? null), fc.array(valueArb.map((value) => value ?? null), { maxLength: 3 })),
  });
  const specArb = fc.record({
    where: fc.array(conditionArb, { maxLength: 2 }),
    orderBy: fc.array(fc.tuple(fc.constantFrom('n', 's'), fc.constantFrom<Direction>('asc', 'desc')), { maxLength: 2 }),
    limit: fc.option(fc.nat({ max: 8 }), { nil: undefined }),
  });

  it('returns matching documents only, sorted, and leaves out none that sort before the limit', () => {
    fc.assert(
      fc.property(docsArb, specArb, (all, query) => {
        const result = runQuery(all, query);
        const matching = all.filter((doc) => matches(doc, query));
        for (const doc of result) {
          expect(matches(doc, query)).toBe(true);
          expect(all).toContain(doc);
        }
        for (let i = 1; i < result.length; i++) expect(compareDocs(result[i - 1]!, result[i]!, query)).toBeLessThan(0);
        expect(result.length).toBe(Math.min(query.limit ?? Infinity, matching.length));
        // What the limit left out sorts after everything kept.
        const last = result[result.length - 1];
        for (const doc of matching) {
          if (!result.includes(doc) && last !== undefined) expect(compareDocs(last, doc, query)).toBeLessThan(0);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('orders as the reverse for desc (ties still by id)', () => {
    fc.assert(
      fc.property(docsArb, fc.constantFrom('n', 's'), (all, field) => {
        const up = runQuery(all, spec([], [[field, 'asc']]));
        const down = runQuery(all, spec([], [[field, 'desc']]));
        const back = [...up].reverse();
        expect(down).toHaveLength(back.length);
        down.forEach((doc, i) => expect(compareValues(doc[field], back[i]![field]), `${i}`).toBe(0));
      }),
      { numRuns: 200 },
    );
  });
});
