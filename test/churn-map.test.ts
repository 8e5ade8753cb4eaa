import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ChurnMap, ChurnSet } from '../src/core/churn-map.ts';

/**
 * ChurnMap and ChurnSet renew their inner collection every few additions (to keep it young for
 * V8's garbage collector); from outside they must behave exactly like a Map and a Set, across
 * any number of renewals.
 */
type Op = { kind: 'set' | 'delete' | 'clear'; key: number; value: number };

const ops = fc.array(
  fc.record({
    kind: fc.constantFrom<Op['kind']>('set', 'set', 'set', 'delete', 'delete', 'clear'),
    key: fc.integer({ min: 0, max: 20 }),
    value: fc.integer(),
  }),
  { maxLength: 400 },
);

interface Collection {
  delete(key: number): boolean;
  clear(): void;
  readonly size: number;
}

/** Runs the same operations on the churn collection and on its model, comparing sizes as it goes. */
function replay<C extends Collection, M extends Collection>(
  sequence: Op[],
  churn: C,
  model: M,
  put: (churn: C, model: M, op: Op) => void,
): void {
  for (const op of sequence) {
    if (op.kind === 'set') put(churn, model, op);
    else if (op.kind === 'delete') assert.equal(churn.delete(op.key), model.delete(op.key));
    else {
      churn.clear();
      model.clear();
    }
    assert.equal(churn.size, model.size);
  }
}

describe('ChurnMap', () => {
  it('answers like a Map after any sequence of sets, deletes and clears (property)', () => {
    fc.assert(
      fc.property(ops, fc.integer({ min: 1, max: 8 }), (sequence, renewEvery) => {
        const model = new Map<number, number>();
        const churn = new ChurnMap<number, number>(renewEvery);
        replay(sequence, churn, model, (c, m, op) => {
          assert.equal(c.set(op.key, op.value), c);
          m.set(op.key, op.value);
        });
        // Same entries in the same (insertion) order, through every way of reading them.
        assert.deepEqual([...churn], [...model]);
        assert.deepEqual([...churn.keys()], [...model.keys()]);
        assert.deepEqual([...churn.values()], [...model.values()]);
        assert.deepEqual([...churn.entries()], [...model.entries()]);
        const seen: Array<[number, number]> = [];
        churn.forEach((v, k) => {
          seen.push([k, v]);
        });
        assert.deepEqual(seen, [...model]);
        for (let key = 0; key <= 20; key++) {
          assert.equal(churn.has(key), model.has(key));
          assert.equal(churn.get(key), model.get(key));
        }
      }),
    );
  });

  it('makes its inner Map anew after the given number of added keys, keeping what it holds', () => {
    const churn = new ChurnMap<string, number>(4);
    const inner = () => (churn as unknown as { inner: Map<string, number> }).inner;
    const first = inner();
    churn.set('a', 1).set('b', 2).set('c', 3);
    churn.set('a', 10); // an update is not an addition
    assert.equal(inner(), first);
    churn.delete('b');
    churn.set('d', 4); // the fourth added key
    assert.notEqual(inner(), first);
    assert.deepEqual(
      [...churn],
      [
        ['a', 10],
        ['c', 3],
        ['d', 4],
      ],
    );
  });
});

describe('ChurnSet', () => {
  it('answers like a Set after any sequence of adds, deletes and clears (property)', () => {
    fc.assert(
      fc.property(ops, fc.integer({ min: 1, max: 8 }), (sequence, renewEvery) => {
        const model = new Set<number>();
        const churn = new ChurnSet<number>(renewEvery);
        replay(sequence, churn, model, (c, m, op) => {
          assert.equal(c.add(op.key), c);
          m.add(op.key);
        });
        assert.deepEqual([...churn], [...model]);
        assert.deepEqual([...churn.values()], [...model.values()]);
        for (let key = 0; key <= 20; key++) assert.equal(churn.has(key), model.has(key));
      }),
    );
  });
});
