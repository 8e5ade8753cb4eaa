import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { compileTemplate, JsonPayload, TemplateError } from '../src/adapters/mqtt/template.ts';

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
    assert.throws(() => render('{{ 1 | round(-309) }}'), /precision must be a whole number from -308 to 308/);
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

/** What Home Assistant sends for a command template: the text Jinja prints (parse_result=False). */
const text = (source: string, vars: Record<string, unknown> = {}) => compileTemplate(source).renderText(vars);

describe('ints and floats print as Python prints them', () => {
  test('float() gives a float, int() an int, / a float and // of ints an int', () => {
    assert.equal(text('{{ value | float }}', { value: '21' }), '21.0');
    assert.equal(text('{{ float(value) }}', { value: 21 }), '21.0');
    assert.equal(text('{{ value | float }}', { value: '21.5' }), '21.5');
    assert.equal(text('{{ value | int }}', { value: '21' }), '21');
    assert.equal(text('{{ value | int }}', { value: '21.7' }), '21');
    assert.equal(text('{{ value | float | int }}', { value: '21' }), '21');
    assert.equal(text('{{ 21 / 3 }}'), '7.0');
    assert.equal(text('{{ 1 / 4 }}'), '0.25');
    assert.equal(text('{{ 7 // 2 }}'), '3');
    assert.equal(text('{{ 7.0 // 2 }}'), '3.0');
    assert.equal(text('{{ 7 % 2 }}'), '1');
    assert.equal(text('{{ 7 % 2.0 }}'), '1.0');
    assert.equal(text('{{ 2 * 1.5 }}'), '3.0');
    assert.equal(text('{{ 20 + 1 }}'), '21');
    assert.equal(text('{{ 20.0 + 1 }}'), '21.0');
    assert.equal(text('{{ 2 ** 3 }}'), '8');
    assert.equal(text('{{ 2.0 ** 3 }}'), '8.0');
    assert.equal(text('{{ 2 ** -1 }}'), '0.5', 'an int to a negative power is a float');
    assert.equal(text('{{ 4 ** -1 * 4 }}'), '1.0');
    assert.equal(text('{{ True + 1 }}'), '2', 'a bool is an int');
    assert.equal(text('{{ True / 1 }}'), '1.0');
    assert.equal(text('{{ value_json.on * 1.0 }}', { value_json: { on: true } }), '1.0');
  });

  test('literals: a point or an exponent makes a float, as in Jinja', () => {
    assert.equal(text('{{ 21.0 }}'), '21.0');
    assert.equal(text('{{ 21 }}'), '21');
    assert.equal(text('{{ 1e3 }}'), '1000.0');
    assert.equal(text('{{ -21.0 }}'), '-21.0');
    assert.equal(text('{{ -(value | float) }}', { value: '0' }), '-0.0', 'a float keeps its negative zero');
    assert.equal(text('{{ 0 * -1 }}'), '0', 'an int has none');
    assert.equal(text('{{ 0.0 * -1 }}'), '-0.0');
  });

  test("round gives an int at precision 0 and a float otherwise, as Home Assistant's forgiving_round", () => {
    assert.equal(text('{{ 2.5 | round }}'), '2', 'int(round(2.5, 0))');
    assert.equal(text('{{ value | round }}', { value: '21.46' }), '21');
    assert.equal(text('{{ 21 | round(1) }}'), '21.0');
    assert.equal(text('{{ 21.46 | round(1) }}'), '21.5');
    assert.equal(text('{{ 1234.5 | round(-2) }}'), '1200.0');
    assert.equal(text("{{ 2.57 | round(0, 'floor') }}"), '2');
    assert.equal(text("{{ 2 | round(1, 'ceil') }}"), '2.0');
    assert.equal(text("{{ 2.3 | round(1, 'half') }}"), '2.5');
    assert.equal(text("{{ 2.3 | round(method='half') }}"), '2');
    assert.equal(
      text("{{ -0.05 | round(1, 'ceil') }}"),
      '0.0',
      'math.ceil gives the int 0, so 0 / 10.0 is 0.0, not -0.0',
    );
    assert.equal(text("{{ -0.2 | round(1, 'half') }}"), '0.0');
    assert.equal(text('{{ -0.01 | round(1) }}'), '-0.0', "Python's round keeps the sign");
  });

  test('text filters and ~ print a float the same way', () => {
    const vars = { value: '21' };
    assert.equal(text('T={{ value | float }} °C', vars), 'T=21.0 °C');
    assert.equal(render('T={{ value | float }} °C', vars), 'T=21.0 °C', 'render with text around it too');
    assert.equal(text("{{ value | float ~ ' °C' }}", vars), '21.0 °C');
    assert.equal(text('{{ value | float | string }}', vars), '21.0');
    assert.equal(text('{{ value | float | tojson }}', vars), '21.0');
    assert.equal(text('{{ value | float | upper }}', vars), '21.0');
    assert.equal(text("{{ value | float | replace('.', ',') }}", vars), '21,0');
    assert.equal(text('{{ (value | float) | abs }}', { value: '-2' }), '2.0');
    assert.equal(text('{{ True | abs }}'), '1');
    assert.equal(text("{{ value | float('n/a') }}", { value: 'x' }), 'n/a');
    assert.equal(text('{{ value | float(0) }}', { value: 'x' }), '0', 'the default is returned as it is, an int');
    assert.equal(text('{{ (value | float) if value else 0 }}', { value: '3' }), '3.0');
  });

  test("Python's float text: the shortest digits, in exponent form below 1e-4 and from 1e16", () => {
    const cases: Array<[string, string]> = [
      ['0.1', '0.1'],
      ['0.0001', '0.0001'],
      ['0.00001', '1e-05'],
      ['1.5e-7', '1.5e-07'],
      ['1e15', '1000000000000000.0'],
      ['1234567890123456.7', '1234567890123456.8'],
      ['1e16', '1e+16'],
      ['123456789012345680.0', '1.2345678901234568e+17'],
      ['1e300', '1e+300'],
      ['5e-324', '5e-324'],
      ['1.7976931348623157e308', '1.7976931348623157e+308'],
      ['0.1 + 0.2', '0.30000000000000004'],
      ['1e308 * 10', 'inf'],
      ['-1e308 * 10', '-inf'],
      ['1e308 * 10 - 1e308 * 10', 'nan'],
    ];
    for (const [expression, expected] of cases) assert.equal(text(`{{ ${expression} }}`), expected, expression);
    assert.equal(text('{{ value | float }}', { value: 1e21 }), '1e+21');
    assert.equal(text('{{ value | int }}', { value: 1e21 }), '1000000000000000000000', 'an int prints every digit');
    assert.equal(text('{{ 2 ** 64 }}'), '18446744073709551616');
  });

  test('the text of any float reads back as the same float, in the form Python uses', () => {
    const compiled = compileTemplate('{{ value | float }}');
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => {
        const printed = compiled.renderText({ value: x });
        assert.ok(Object.is(Number(printed), x), `${x} printed as ${printed}`);
        const exponent = Math.abs(x) === 0 ? 0 : Number(Math.abs(x).toExponential().split('e')[1]);
        if (exponent < -4 || exponent >= 16) assert.match(printed, /^-?\d(\.\d+)?e[+-]\d{2,3}$/, printed);
        else assert.match(printed, /^-?\d+\.\d+$/, printed);
      }),
      { numRuns: 5000 },
    );
  });

  test('a value template still gives the number: 21.0 is stored as 21', () => {
    assert.equal(render('{{ value | float }}', { value: '21' }), 21);
    assert.equal(render('{{ 21 / 3 }}'), 7);
    assert.equal(render('{{ 21.0 }}'), 21);
    assert.equal(render('{{ value | round(1) }}', { value: 21 }), 21);
    assert.equal(render('{{ -(value | float) }}', { value: '2' }), -2);
    assert.deepEqual(render('{{ [1.0, value | float] }}', { value: '2' }), [1, 2]);
    assert.equal(render("{{ value | float | default('x') }}", { value: '5' }), 5);
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => {
        const rendered = render('{{ value | float }}', { value: x });
        assert.equal(typeof rendered, 'number');
        assert.ok(Object.is(rendered, x));
      }),
      { numRuns: 1000 },
    );
  });

  test('a whole float is still equal to the int, and works wherever a number does', () => {
    assert.equal(render('{{ 21.0 == 21 }}'), true);
    assert.equal(render('{{ value | float in [21] }}', { value: '21' }), true);
    assert.equal(render('{{ value | float > 20 }}', { value: '21' }), true);
    assert.equal(render('{{ "on" if value | float else "off" }}', { value: '0' }), 'off');
    assert.equal(render('{{ value | float | bool }}', { value: '1' }), true);
    assert.equal(render('{{ value_json.list[value | int] }}', { value: '1', value_json: { list: [7, 8] } }), 8);
    assert.equal(
      render('{{ value_json.list[1.0] }}', { value_json: { list: [7, 8] } }),
      undefined,
      'a float index is a TypeError in Python: undefined',
    );
    assert.equal(render('{{ (value | float).value }}', { value: '1' }), undefined);
    assert.throws(() => render('{{ value | float | length }}', { value: '1' }), /has no length/);
  });

  test("// and % follow Python's float_divmod", () => {
    assert.equal(text('{{ 1 // 0.1 }}'), '9.0', '0.1 is a little more than a tenth');
    assert.equal(text('{{ 1 % 0.1 }}'), '0.09999999999999995');
    assert.equal(text('{{ -7.5 // 2 }}'), '-4.0');
    assert.equal(text('{{ -7.5 % 2 }}'), '0.5');
    assert.equal(text('{{ 7 // -2 }}'), '-4');
    assert.equal(text('{{ 7 % -2 }}'), '-1');
    assert.equal(text('{{ -1e-20 % 1.0 }}'), '1.0');
    assert.equal(text('{{ 6 % -3 }}'), '0');
    assert.equal(text('{{ 6.0 % -3 }}'), '-0.0');
  });

  test('powers Python refuses are errors, not inf or nan', () => {
    assert.throws(() => render('{{ 0 ** -1 }}'), /division by zero/);
    assert.throws(() => render('{{ 0.0 ** -1 }}'), /division by zero/);
    assert.throws(() => render('{{ -8 ** 0.5 }}'), /no real result/);
    assert.throws(() => render('{{ 10.0 ** 400 }}'), /too large/);
  });
});

describe('is number is true for booleans, as in Jinja', () => {
  test('a bool is a Number in Python', () => {
    assert.equal(render('{{ True is number }}'), true);
    assert.equal(render('{{ false is number }}'), true);
    assert.equal(render('{{ value is number }}', { value: true }), true);
    assert.equal(render('{{ value_json.on is not number }}', { value_json: { on: false } }), false);
    assert.equal(render('{{ 1.0 is number }}'), true);
    assert.equal(render('{{ value | float is number }}', { value: '3' }), true);
    assert.equal(render('{{ 3 is number }}'), true);
    assert.equal(render("{{ '3' is number }}"), false);
    assert.equal(render('{{ none is number }}'), false);
    assert.equal(render('{{ value_json.missing is number }}', { value_json: {} }), false);
    assert.equal(render('{{ [1] is number }}'), false);
    assert.equal(render('{{ True is boolean }}'), true);
    assert.equal(render('{{ 1 is boolean }}'), false);
  });
});

describe('in on a JSON object looks at its keys, as on a Python dict', () => {
  const value_json = { '1': 2, on: true };
  test('a value that is not a string is simply not a key', () => {
    assert.equal(render('{{ 1 in value_json }}', { value_json }), false);
    assert.equal(render('{{ 1 not in value_json }}', { value_json }), true);
    assert.equal(render('{{ 1.0 in value_json }}', { value_json }), false);
    assert.equal(render('{{ True in value_json }}', { value_json }), false);
    assert.equal(render('{{ none in value_json }}', { value_json }), false);
    assert.equal(render('{{ value_json.missing in value_json }}', { value_json }), false);
    assert.equal(render("{{ '1' in value_json }}", { value_json }), true);
    assert.equal(render("{{ 'on' in value_json }}", { value_json }), true);
    assert.equal(render("{{ 'off' in value_json }}", { value_json }), false);
    assert.equal(render('{{ value | int in value_json }}', { value: '1', value_json }), false);
  });

  test('an unhashable list or dict is an error, as in Python', () => {
    assert.throws(() => render('{{ [1] in value_json }}', { value_json }), /cannot be a key/);
    assert.throws(() => render('{{ value_json in value_json }}', { value_json }), /cannot be a key/);
  });
});

describe("round's precision goes up to 308, as Home Assistant allows", () => {
  test('a precision past the digits a double has gives the value back', () => {
    assert.equal(render('{{ 0.1 | round(20) }}'), 0.1);
    assert.equal(text('{{ 0.1 | round(20) }}'), '0.1');
    assert.equal(render('{{ 2.675 | round(17) }}'), 2.675);
    assert.equal(render('{{ 2.675 | round(16) }}'), 2.675);
    assert.equal(render('{{ 2.675 | round(308) }}'), 2.675);
    assert.equal(render('{{ 21 | round(300) }}'), 21);
    assert.equal(text('{{ 21 | round(300) }}'), '21.0');
  });

  test('a tiny value still rounds exactly at a large precision', () => {
    assert.equal(render('{{ value | round(308) }}', { value: 1.2345678901234568e-300 }), 1.23456789e-300);
    assert.equal(render('{{ 2.5e-308 | round(308) }}'), 2e-308);
    assert.equal(render('{{ 5e-324 | round(308) }}'), 0);
    assert.equal(render('{{ 1.5e-20 | round(20) }}'), 2e-20, 'half to even on the exact value, which is above 1.5e-20');
  });

  test('any precision from 17 keeps a value of 1 or more', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 1, max: 1e300, noNaN: true }),
        fc.integer({ min: 17, max: 308 }),
        fc.boolean(),
        (x, precision, negative) => {
          const value = negative ? -x : x;
          assert.equal(render(`{{ value | round(${precision}) }}`, { value }), value);
        },
      ),
      { numRuns: 500 },
    );
  });

  test('beyond 308, and where Python overflows, it is an error', () => {
    assert.throws(() => render('{{ 1 | round(309) }}'), /precision must be a whole number from -308 to 308/);
    assert.throws(() => render("{{ 1 | round(309, default='x') }}"), /precision/, 'an OverflowError, not a ValueError');
    assert.throws(() => render("{{ 1e300 | round(15, 'floor') }}"), /too large/);
    assert.throws(() => render("{{ 1e300 | round(300, 'ceil') }}"), /too large/);
    assert.throws(() => render('{{ 1.7976931348623157e308 | round(-308) }}'), /overflows/);
    assert.equal(render("{{ 1.5 | round(308, 'floor') }}"), 1.5);
  });
});

/** The text Home Assistant renders for a value template over an MQTT payload, value_json as Python's json reads it. */
const fromPayload = (source: string, payload: string) =>
  compileTemplate(source).renderText({ value: payload, value_json: new JsonPayload(payload) });

describe("value_json reads numbers as Python's json does", () => {
  test('a number written with a fraction or an exponent is a float, one without is an int', () => {
    assert.equal(fromPayload('{{ value_json.t }}', '{"t": 21.0}'), '21.0');
    assert.equal(fromPayload('{{ value_json.t }}', '{"t": 21}'), '21');
    assert.equal(fromPayload('{{ value_json.t }}', '{"t": 21.5}'), '21.5');
    assert.equal(fromPayload('{{ value_json.t }}', '{"t": 21.000}'), '21.0');
    assert.equal(fromPayload('{{ value_json.t }}', '{"t": 1e3}'), '1000.0');
    assert.equal(fromPayload('{{ value_json.t }}', '{"t": 25E-1}'), '2.5');
    assert.equal(fromPayload('{{ value_json.t }}', '{"t": 2.5e1}'), '25.0');
    assert.equal(fromPayload('{{ value_json.t }}', '{"t": 1e-400}'), '0.0', 'it underflows to a float zero');
    assert.equal(fromPayload('{{ value_json.t }}', '{"t": -0.0}'), '-0.0');
    assert.equal(fromPayload('{{ value_json.t }}', '{"t": -0}'), '0', 'an int has no negative zero');
    assert.equal(fromPayload('{{ value_json.t }}', '{"t": 0.99999999999999999}'), '1.0', 'the nearest double is 1');
    assert.equal(fromPayload('{{ value_json.t }}', '{"t": 9007199254740993.5}'), '9007199254740994.0');
    assert.equal(fromPayload('{{ value_json }}', '21.0'), '21.0', 'a payload that is one float');
    assert.equal(fromPayload('{{ value_json }}', ' 21 '), '21');
    // Text that only looks like a float changes nothing.
    assert.equal(fromPayload('{{ value_json.v }}', '{"v": "1.0", "n": 3}'), '1.0');
    assert.equal(fromPayload('{{ value_json.n }}', '{"v": "1.0", "n": 3}'), '3');
    assert.equal(fromPayload('{{ value_json.n }}', '{"v": "3e5", "n": 3}'), '3');
  });

  test('floats keep their type at any depth, through indexes, and in what a template computes', () => {
    const payload = '{"a": {"b": [1, 2.0, {"c": 3.0}]}, "n": 4.0, "i": 4}';
    assert.equal(fromPayload('{{ value_json.a.b[1] }}', payload), '2.0');
    assert.equal(fromPayload('{{ value_json.a.b[-2] }}', payload), '2.0');
    assert.equal(fromPayload('{{ value_json.a.b[0] }}', payload), '1');
    assert.equal(fromPayload("{{ value_json['a']['b'][2].c }}", payload), '3.0');
    assert.equal(fromPayload('{{ value_json.n + 1 }}', payload), '5.0');
    assert.equal(fromPayload('{{ value_json.i + 1 }}', payload), '5');
    assert.equal(fromPayload('{{ value_json.n | int }}', payload), '4');
    assert.equal(fromPayload('{{ value_json.n | abs }}', payload), '4.0');
    assert.equal(fromPayload('{{ value_json.n ~ " W" }}', payload), '4.0 W');
    assert.equal(fromPayload('{{ value_json.n == value_json.i }}', payload), 'True');
    assert.equal(fromPayload('{{ value_json.n is number }}', payload), 'True');
  });

  test("a repeated key takes its last value and that value's type", () => {
    assert.equal(fromPayload('{{ value_json.t }}', '{"t": 1.0, "t": 2}'), '2');
    assert.equal(fromPayload('{{ value_json.t }}', '{"t": 1, "t": 2.0}'), '2.0');
  });

  test('only templates see the floats: the data is what JSON.parse gives, and render() gives numbers', () => {
    const text = '{"t": 21.0, "list": [1.0, "x\\"\\u00e9", true, null], "__proto__": 5.0, "e": {}}';
    const payload = new JsonPayload(text);
    assert.equal(compileTemplate('{{ value_json.t }}').renderText({ value_json: payload }), '21.0');
    assert.equal(compileTemplate("{{ value_json['__proto__'] }}").renderText({ value_json: payload }), '5.0');
    assert.equal(
      compileTemplate('{{ value_json.list }}').renderText({ value_json: payload }),
      `[1.0, 'x"é', True, None]`,
    );
    assert.deepEqual(payload.data, JSON.parse(text));
    assert.equal(compileTemplate('{{ value_json.t }}').render({ value_json: payload }), 21);
    assert.deepEqual(compileTemplate('{{ value_json.list }}').render({ value_json: payload }), [1, 'x"é', true, null]);
    assert.deepEqual(compileTemplate('{{ value_json }}').render({ value_json: payload }), JSON.parse(text));
    assert.equal(compileTemplate('{{ value_json }}').render({ value_json: new JsonPayload('21.0') }), 21);
    assert.equal(new JsonPayload('21.0').data, 21);
    assert.throws(() => new JsonPayload('{"t": 21.0'), SyntaxError);
    assert.throws(() => new JsonPayload('21.'), SyntaxError);
  });

  test('floats are kept through deep nesting; deeper than 256 levels they print as ints', () => {
    const nested = `${'['.repeat(200)}1.0${']'.repeat(200)}`;
    assert.equal(fromPayload('{{ value_json }}', nested), nested);
    const deep = `${'['.repeat(300)}1.0${']'.repeat(300)}`;
    assert.equal(fromPayload('{{ value_json }}', deep), deep.replace('1.0', '1'));
    const deepest = new JsonPayload(`${'['.repeat(30_000)}1.0${']'.repeat(30_000)}`);
    assert.throws(() => compileTemplate('{{ value_json }}').renderText({ value_json: deepest }), TemplateError);
    assert.equal(compileTemplate('{{ value_json[0] | length }}').renderText({ value_json: deepest }), '1');
  });

  test('one payload read by several templates, as the entities on one topic read it', () => {
    const payload = new JsonPayload('{"a": 1.0, "b": [2.0, 3]}');
    for (let i = 0; i < 2; i++) {
      assert.equal(compileTemplate('{{ value_json.a }}').renderText({ value_json: payload }), '1.0');
      assert.equal(compileTemplate('{{ value_json.b }}').renderText({ value_json: payload }), '[2.0, 3]');
      assert.equal(compileTemplate('{{ value_json.a }}').render({ value_json: payload }), 1);
    }
  });

  test('every float literal prints as Python prints float() of it, however the quick scan judges it', () => {
    const digits = (min: number, max: number) =>
      fc.array(fc.integer({ min: 0, max: 9 }), { minLength: min, maxLength: max }).map((d) => d.join(''));
    const run = (digit: string) =>
      fc.tuple(fc.integer({ min: 0, max: 22 }), digits(0, 3)).map(([n, tail]) => digit.repeat(n) + tail);
    const whole = fc.oneof(
      fc.constant('0'),
      fc.tuple(fc.integer({ min: 1, max: 9 }), digits(0, 20)).map(([first, rest]) => `${first}${rest}`),
    );
    const fraction = fc.oneof(digits(1, 22), run('0'), run('9')).filter((f) => f.length > 0);
    const exponent = fc.oneof(
      fc.constant(''),
      fc
        .tuple(fc.constantFrom('e', 'E', 'e+', 'e-', 'E-'), fc.integer({ min: 0, max: 400 }))
        .map(([e, n]) => `${e}${n}`),
    );
    const literal = fc
      .tuple(fc.boolean(), whole, fc.option(fraction, { nil: undefined }), exponent)
      .filter(([, , f, e]) => f !== undefined || e !== '')
      .map(([negative, w, f, e]) => `${negative ? '-' : ''}${w}${f === undefined ? '' : `.${f}`}${e}`)
      // float() of a literal beyond the doubles is inf, which Triad's float filter refuses.
      .filter((x) => Number.isFinite(Number(x)));
    const viaFloat = compileTemplate('{{ value | float }}');
    fc.assert(
      fc.property(literal, (x) => {
        const expected = viaFloat.renderText({ value: x });
        assert.equal(fromPayload('{{ value_json.x }}', `{"x": ${x}}`), expected, x);
        assert.equal(fromPayload('{{ value_json[0] }}', `[${x}, "1.5"]`), expected, x);
      }),
      { numRuns: 3000 },
    );
  });
});

describe("lists and dicts print as Python's str prints them", () => {
  test('items in their Python spelling: quotes, True, None, floats', () => {
    const payload = '{"list": ["a", 1, true, null, 2.0, false, 0.5], "dict": {"a": 1}, "empty": [], "none": {}}';
    assert.equal(fromPayload('{{ value_json.list }}', payload), "['a', 1, True, None, 2.0, False, 0.5]");
    assert.equal(fromPayload('{{ value_json.dict }}', payload), "{'a': 1}");
    assert.equal(fromPayload('{{ value_json.empty }}', payload), '[]');
    assert.equal(fromPayload('{{ value_json.none }}', payload), '{}');
    assert.equal(
      fromPayload('{{ value_json }}', '{"a": {"b": [1, [2.0, {"c": null}]]}, "d": [{}]}'),
      "{'a': {'b': [1, [2.0, {'c': None}]]}, 'd': [{}]}",
    );
  });

  test("strings as Python's repr writes them", () => {
    const cases: Array<[string, string]> = [
      ['"plain"', "'plain'"],
      ['"it\'s"', `"it's"`],
      ['"say \\"hi\\""', `'say "hi"'`],
      ['"both \' and \\""', `'both \\' and "'`],
      ['"back\\\\slash"', "'back\\\\slash'"],
      ['"line\\nfeed\\ttab\\rreturn"', "'line\\nfeed\\ttab\\rreturn'"],
      ['"\\u0001\\u001f\\u007f"', "'\\x01\\x1f\\x7f'"],
      ['"caf\\u00e9 \\u00a0 \\u2028 \\u200b"', "'café \\xa0 \\u2028 \\u200b'"],
      ['"\\ud83d\\ude00 \\ud800"', "'😀 \\ud800'"],
      ['"\\udb40\\udc01"', "'\\U000e0001'"],
    ];
    for (const [json, expected] of cases) {
      assert.equal(fromPayload('{{ value_json }}', `[${json}]`), `[${expected}]`, json);
    }
    assert.equal(fromPayload('{{ value_json }}', '{"it\'s": "x"}'), `{"it's": 'x'}`);
  });

  test('a list literal prints its items the same way', () => {
    assert.equal(text("{{ [1.0, 2, 'x', none, true] }}"), "[1.0, 2, 'x', None, True]");
    assert.equal(text('{{ [value | float, value | int] }}', { value: '3' }), '[3.0, 3]');
    assert.equal(text('{{ [1.0, 2][0] }}'), '1.0');
    assert.equal(text('{{ [[1.0]] }}'), '[[1.0]]');
  });

  test('~, string and the text filters use that text; tojson writes JSON, its floats as floats', () => {
    const payload = '{"list": ["a", 2.0], "dict": {"k": true}}';
    assert.equal(fromPayload("{{ value_json.list ~ '!' }}", payload), "['a', 2.0]!");
    assert.equal(fromPayload('{{ value_json.dict | string }}', payload), "{'k': True}");
    assert.equal(fromPayload('{{ value_json.dict | upper }}', payload), "{'K': TRUE}");
    assert.equal(fromPayload("{{ value_json.list | replace('a', 'b') }}", payload), "['b', 2.0]");
    assert.equal(fromPayload('{{ value_json.list | tojson }}', payload), '["a",2.0]');
    assert.equal(fromPayload('{{ value_json.dict | to_json }}', payload), '{"k":true}');
    assert.deepEqual(JSON.parse(fromPayload('{{ value_json | tojson }}', payload)), JSON.parse(payload));
  });
});

describe('rendered text stripped as Home Assistant strips it', () => {
  const text = (source: string, vars: Record<string, unknown> = {}) => compileTemplate(source).renderText(vars);
  const result = (source: string, vars: Record<string, unknown> = {}) => compileTemplate(source).renderResult(vars);

  test('a state with blanks or the newline a YAML block leaves compares as the payload itself', () => {
    const vars = { value: ' ON\n', value_json: { state: '  OFF ' } };
    assert.equal(result('{{ value }}', vars), 'ON');
    assert.equal(result('{{ value_json.state }}', vars), 'OFF');
    assert.equal(result('{{ value_json.state }}\n', vars), 'OFF');
    assert.equal(render('{{ value_json.state }}', vars), 'OFF');
    assert.equal(text('state: {{ value_json.state }}\n\n', vars), 'state:   OFF');
    assert.equal(text('  {{ 21.0 }} °C\t'), '21.0 °C');
  });

  test("Python's whitespace, not JavaScript's: separators and NEL go, a byte-order mark stays", () => {
    assert.equal(text('{{ value }}', { value: '\x1c\x1fON\x85' }), 'ON');
    assert.equal(text('{{ value }}', { value: '\ufeffON' }), '\ufeffON');
    assert.equal(text('{{ value }}', { value: '\u3000ON\u2029' }), 'ON');
  });

  test('the inside of the text is left as it is', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const inner = `a${s}b`;
        assert.equal(text('{{ value }}', { value: ` \n${inner}\t ` }), inner);
      }),
    );
  });
});
