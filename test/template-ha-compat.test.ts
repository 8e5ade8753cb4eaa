import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { compileTemplate } from '../src/adapters/mqtt/template.ts';

const render = (source: string, vars: Record<string, unknown> = {}) => compileTemplate(source).render(vars);

// Expected values come from Python 3 running Home Assistant's forgiving_round and plain Python
// expressions; each case says what Home Assistant renders.

describe("round as Home Assistant's forgiving_round does it", () => {
  test('an unknown method is common rounding, not an error', () => {
    assert.equal(render("{{ 2.567 | round(1, 'nearest') }}"), 2.6);
    assert.equal(render("{{ value | round(1, method='banker') }}", { value: 2.25 }), 2.2, 'half to even, as common');
    assert.equal(render("{{ 2.5 | round(0, 'Floor') }}"), 2, 'methods are case-sensitive: "Floor" is common');
    assert.equal(render("{{ 3.5 | round(method='') }}"), 4);
    assert.equal(render('{{ 2.71 | round(1, none) }}'), 2.7);
    assert.equal(
      render("{{ value | round(1, 'x', default='?') }}", { value: 'n/a' }),
      '?',
      'the default still applies',
    );
  });

  test('any method other than floor, ceil and half gives what common gives', () => {
    const methods = fc.string({ maxLength: 6 }).filter((m) => !['floor', 'ceil', 'half'].includes(m));
    fc.assert(
      fc.property(
        methods,
        fc.double({ min: -1e6, max: 1e6, noNaN: true }),
        fc.integer({ min: -3, max: 4 }),
        (method, value, precision) => {
          const vars = { value, method };
          assert.equal(
            render(`{{ value | round(${precision}, method) }}`, vars),
            render(`{{ value | round(${precision}, 'common') }}`, vars),
          );
        },
      ),
      { numRuns: 500 },
    );
  });

  test('a negative precision rounds to tens, hundreds… as Python does', () => {
    assert.equal(render('{{ 1234.5 | round(-2) }}'), 1200);
    assert.equal(render('{{ value | round(-1) }}', { value: 1234.5678 }), 1230);
    assert.equal(render('{{ 1250 | round(-2) }}'), 1200, 'a tie goes to the even hundred');
    assert.equal(render('{{ 1350 | round(-2) }}'), 1400);
    assert.equal(render('{{ value | round(-2) }}', { value: -1250 }), -1200);
    assert.equal(render("{{ '98765' | round(precision=-3) }}"), 99000);
    assert.equal(render('{{ 4 | round(-1) }}'), 0);
    assert.equal(render('{{ 1e300 | round(-308) }}'), 0, '1e300 is far below half of 10**308');
    assert.equal(render('{{ value | round(-1, "floor") }}', { value: 1234.5678 }), 1230);
    assert.equal(render('{{ value | round(-1, "ceil") }}', { value: 1234.5678 }), 1240);
    assert.equal(render('{{ 12345 | round(-4, "floor") }}'), 10000);
    // Python's float(10**-5) is 1e-05 exactly rounded; JavaScript's 10 ** -5 is one ulp above it.
    assert.equal(render('{{ 0.5 | round(-5, "ceil") }}'), 99999.99999999999);
    assert.equal(render('{{ 1234.5 | round(-2, "half") }}'), 1234.5, 'half ignores the precision');
    assert.throws(() => render('{{ 1 | round(-309) }}'), /precision must be a whole number from -308 to 15/);
  });

  test('a negative precision agrees with exact decimal rounding, ties to even', () => {
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 50), max: 2 ** 50 }), fc.integer({ min: 1, max: 6 }), (n, places) => {
        const unit = 10n ** BigInt(places);
        const big = BigInt(n);
        const magnitude = big < 0n ? -big : big;
        let quotient = magnitude / unit;
        const twice = 2n * (magnitude - quotient * unit);
        if (twice > unit || (twice === unit && quotient % 2n === 1n)) quotient += 1n;
        const expected = Number(quotient * unit) * (big < 0n ? -1 : 1);
        assert.equal((render(`{{ value | round(-${places}) }}`, { value: n }) as number) + 0, expected + 0, `${n}`);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('booleans are integers, as in Python', () => {
  test('== and != treat True as 1 and False as 0', () => {
    assert.equal(render('{{ 1 == True }}'), true);
    assert.equal(render('{{ 0 == False }}'), true);
    assert.equal(render('{{ True == 1.0 }}'), true);
    assert.equal(render('{{ value_json.on == 1 }}', { value_json: { on: true } }), true);
    assert.equal(render('{{ value_json.level != False }}', { value_json: { level: 0 } }), false);
    assert.equal(render('{{ 2 == True }}'), false);
    assert.equal(render("{{ '1' == True }}"), false, 'a string is never a number');
    assert.equal(render('{{ none == False }}'), false);
    assert.equal(render('{{ value_json.missing == False }}', { value_json: {} }), false);
  });

  test('lists and dicts compare their items the same way', () => {
    assert.equal(render('{{ [1, 0] == [True, False] }}'), true);
    assert.equal(render('{{ value_json == [True, 2] }}', { value_json: [1, 2] }), true);
    assert.equal(render('{{ value_json.a == value_json.b }}', { value_json: { a: { x: 1 }, b: { x: true } } }), true);
    assert.equal(render('{{ value_json.a != value_json.b }}', { value_json: { a: { x: 1 }, b: { x: true } } }), false);
    assert.equal(render('{{ [1] == [1, 1] }}'), false);
    assert.equal(render('{{ [none] == [value_json.missing] }}', { value_json: {} }), false);
  });

  test('dicts are equal whatever their key order', () => {
    const value_json = { a: { x: 1, y: 2 }, b: { y: 2, x: 1 }, c: { x: 1, z: 2 } };
    assert.equal(render('{{ value_json.a == value_json.b }}', { value_json }), true);
    assert.equal(render('{{ value_json.a == value_json.c }}', { value_json }), false);
  });

  test('in finds a bool among numbers and a number among bools', () => {
    assert.equal(render('{{ True in [1, 2] }}'), true);
    assert.equal(render('{{ 1 in [True] }}'), true);
    assert.equal(render('{{ 0 in value_json }}', { value_json: [false, 'x'] }), true);
    assert.equal(render('{{ False not in [1, 2] }}'), true);
    assert.equal(render('{{ value in [[1]] }}', { value: [true] }), true);
  });

  test('arithmetic and ordering count True as 1 and False as 0', () => {
    assert.equal(render('{{ True + 1 == 2 }}'), true);
    assert.equal(render('{{ True + 1 }}'), 2);
    assert.equal(render('{{ value_json.on * 100 }}', { value_json: { on: true } }), 100);
    assert.equal(render('{{ False - 1 }}'), -1);
    assert.equal(render('{{ -True }}'), -1);
    assert.equal(render('{{ True < 2 }}'), true);
    assert.equal(render('{{ False >= 0 }}'), true);
    assert.throws(() => render('{{ 1 / False }}'), /division by zero/);
    assert.throws(() => render("{{ True + 'a' }}"), /both sides must be numbers/);
    assert.throws(() => render("{{ True < 'a' }}"), /cannot compare/);
  });
});
