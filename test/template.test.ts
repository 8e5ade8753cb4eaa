import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { compileTemplate, SUPPORTED_TEMPLATE_FORMS, TemplateError } from '../src/adapters/mqtt/template.ts';

const render = (source: string, vars: Record<string, unknown> = {}) => compileTemplate(source).render(vars);

describe('value templates seen in discovery configs', () => {
  const z2m = { value_json: { state: 'ON', brightness: 254, temperature: 21.46, color: { x: 0.3 }, list: [7, 8] } };

  test('the raw payload and JSON paths', () => {
    assert.equal(render('{{ value }}', { value: 'ON' }), 'ON');
    assert.equal(render('{{value_json.temperature}}', z2m), 21.46);
    assert.equal(render('{{ value_json.color.x }}', z2m), 0.3);
    assert.equal(render('{{ value_json["state"] }}', z2m), 'ON');
    assert.equal(render("{{ value_json['brightness'] }}", z2m), 254);
    assert.equal(render('{{ value_json.list[0] }}', z2m), 7);
    assert.equal(render('{{ value_json.list[-1] }}', z2m), 8);
  });

  test('a missing key is undefined, not an error, and default() fills it', () => {
    assert.equal(render('{{ value_json.humidity }}', z2m), undefined);
    assert.equal(render('{{ value_json.a.b.c }}', z2m), undefined);
    assert.equal(render('{{ value_json.humidity | default(0) }}', z2m), 0);
    assert.equal(render("{{ value_json.humidity | default('n/a') }}", z2m), 'n/a');
    assert.equal(render("{{ value_json.state | default('n/a') }}", z2m), 'ON');
    assert.equal(render("{{ '' | default('x', true) }}"), 'x');
  });

  test('number filters and arithmetic', () => {
    assert.equal(render('{{ value | float }}', { value: '21.5' }), 21.5);
    assert.equal(render('{{ value | float(0) }}', { value: 'n/a' }), 0);
    assert.equal(render('{{ value | int }}', { value: '21.7' }), 21);
    assert.equal(render('{{ value | int(5) }}', { value: 'x' }), 5);
    assert.equal(render('{{ value_json.temperature | round(1) }}', z2m), 21.5);
    assert.equal(render('{{ value_json.temperature | round }}', z2m), 21);
    assert.equal(render("{{ 2.57 | round(1, 'floor') }}"), 2.5);
    assert.equal(render('{{ value_json.brightness * 100 }}', z2m), 25400);
    assert.equal(render('{{ value_json.brightness / 10 }}', z2m), 25.4);
    assert.equal(render('{{ value_json.brightness + 1 }}', z2m), 255);
    assert.equal(render('{{ value_json.brightness - 4 }}', z2m), 250);
    assert.equal(render('{{ value | float * 2.55 }}', { value: '40' }), 102);
    assert.equal(render('{{ (value_json.temperature * 10) | round }}', z2m), 215);
    assert.equal(render('{{ 7 // 2 }}'), 3);
    assert.equal(render('{{ -7 % 3 }}'), 2, 'modulo follows Python');
    assert.equal(render('{{ 2 ** 10 }}'), 1024);
    assert.equal(render('{{ -value_json.brightness }}', z2m), -254);
  });

  test('text filters', () => {
    assert.equal(render('{{ value | lower }}', { value: 'ON' }), 'on');
    assert.equal(render('{{ value | upper }}', { value: 'on' }), 'ON');
    assert.equal(render('{{ value_json.brightness | string }}', z2m), '254');
    assert.equal(render('{{ value_json.color | tojson }}', z2m), '{"x":0.3}');
    assert.equal(render('{{ value | trim }}', { value: ' a ' }), 'a');
    assert.equal(render("{{ value | replace('-', '') }}", { value: 'a-b' }), 'ab');
    assert.equal(render('{{ value_json.list | length }}', z2m), 2);
  });

  test('bool and is_defined', () => {
    assert.equal(render('{{ value | bool }}', { value: 'on' }), true);
    assert.equal(render('{{ value | bool }}', { value: 'OFF' }), false);
    assert.equal(render('{{ value | bool(false) }}', { value: 'maybe' }), false);
    assert.equal(render('{{ value_json.state | is_defined }}', z2m), 'ON');
    assert.throws(() => render('{{ value_json.nope | is_defined }}', z2m), TemplateError);
  });

  test('comparisons, boolean logic, tests and inline if/else', () => {
    assert.equal(render('{{ value_json.state == "ON" }}', z2m), true);
    assert.equal(render("{{ value_json.state != 'ON' }}", z2m), false);
    assert.equal(render('{{ value_json.brightness > 100 and value_json.state == "ON" }}', z2m), true);
    assert.equal(render('{{ not value_json.state }}', z2m), false);
    assert.equal(render("{{ 'ON' in ['ON', 'OFF'] }}"), true);
    assert.equal(render("{{ 'x' not in value_json }}", z2m), true);
    assert.equal(render('{{ value_json.humidity is defined }}', z2m), false);
    assert.equal(render('{{ value_json.humidity is not defined }}', z2m), true);
    assert.equal(render('{{ "ON" if value else "OFF" }}', { value: true }), 'ON');
    assert.equal(render('{{ "ON" if value else "OFF" }}', { value: false }), 'OFF');
    assert.equal(render('{{ "ON" if value_json.state == "ON" else "OFF" }}', z2m), 'ON');
    assert.equal(render('{{ "on" if false }}'), undefined);
  });

  test('command templates with their own variables', () => {
    assert.equal(render('{{ brightness }}', { brightness: 128 }), 128);
    assert.equal(render('{"state": "{{ value }}"}', { value: 'ON' }), '{"state": "ON"}');
    assert.equal(render('{"brightness": {{ brightness | int }}}', { brightness: 127.6 }), '{"brightness": 127}');
  });

  test('literal text around expressions renders as text, with Jinja spellings', () => {
    assert.equal(render('T={{ value }} °C', { value: 21 }), 'T=21 °C');
    assert.equal(render('{{ value }}/{{ other }}', { value: true, other: null }), 'True/None');
    assert.equal(render('plain text'), 'plain text');
    assert.equal(render(''), '');
    assert.equal(render('a {# note #}b'), 'a b');
    assert.equal(render('x  {{- value -}}  y', { value: 1 }), 'x1y');
    assert.equal(render('  {{ value }}  ', { value: 5 }), 5, 'whitespace around one expression keeps its type');
  });

  test('the supported forms are listed for the README', () => {
    assert.ok(SUPPORTED_TEMPLATE_FORMS.length >= 5);
    assert.ok(SUPPORTED_TEMPLATE_FORMS.some((form) => form.includes('value_json')));
  });
});

describe('templates Triad refuses, with a message saying why', () => {
  const refusals: Array<[string, RegExp]> = [
    ['{% for x in value_json %}{{ x }}{% endfor %}', /statements/],
    ['{% if value %}ON{% endif %}', /statements/],
    ["{{ states('sensor.outside') }}", /function calls such as states/],
    ['{{ now() }}', /function calls such as now/],
    ['{{ states.sensor.outside.state }}', /reads Home Assistant state/],
    ['{{ this.state }}', /reads Home Assistant state/],
    ["{{ value.split(',')[0] }}", /method calls/],
    ['{{ value | from_json }}', /filter "from_json" is not supported/],
    ['{{ value is even }}', /test "is even" is not supported/],
    ['{{ value ', /unclosed/],
    ['{{ }}', /empty expression/],
    ['{{ "abc }}', /unterminated string/],
    ['{{ {"a": 1} }}', /unexpected character/],
    ['{{ value value }}', /unexpected/],
    ['{{ value_json[0, 1] }}', /tuples/],
    ['{# never closed', /unclosed comment/],
    [`{{ ${'('.repeat(200)}1${')'.repeat(200)} }}`, /nested deeper/],
    [`{{ ${'-'.repeat(200)}1 }}`, /nested deeper/],
    [`{{ value }}${'x'.repeat(5000)}`, /longer than/],
  ];
  for (const [source, message] of refusals) {
    test(`refuses ${source.slice(0, 60)}`, () => {
      assert.throws(
        () => compileTemplate(source),
        (error: unknown) => {
          assert.ok(error instanceof TemplateError, `expected a TemplateError, got ${String(error)}`);
          assert.match(error.message, message);
          return true;
        },
      );
    });
  }

  test('runtime mistakes are TemplateErrors too', () => {
    assert.throws(() => render('{{ value | float }}', { value: 'abc' }), /float: cannot convert "abc"/);
    assert.throws(() => render('{{ value * 2 }}', { value: 'ab' }), /both sides must be numbers/);
    assert.throws(() => render('{{ 1 / 0 }}'), /division by zero/);
    assert.throws(() => render('{{ value < 1 }}', { value: 'a' }), /cannot compare/);
  });

  test('inherited properties are not reachable', () => {
    assert.equal(render('{{ value_json.constructor }}', { value_json: {} }), undefined);
    assert.equal(render('{{ value_json.__proto__ }}', { value_json: {} }), undefined);
    assert.equal(render("{{ value['length'] }}", { value: 'abc' }), undefined);
  });
});

describe('hostile input', () => {
  const pieces = [
    '{{',
    '}}',
    '{%',
    '%}',
    '{#',
    '#}',
    '-}}',
    '{{-',
    'value',
    'value_json',
    '.',
    '[',
    ']',
    '(',
    ')',
    '|',
    'float',
    'round(1)',
    'default(',
    'int(base=16)',
    'round(precision=',
    'method=',
    '=',
    'float(',
    '<',
    '1 < 2 <',
    'if',
    'else',
    'not',
    'and',
    'in',
    'is',
    'defined',
    '==',
    '*',
    '/',
    '//',
    '**',
    '-',
    '+',
    '~',
    ',',
    '"',
    "'",
    '\\',
    '0',
    '1e308',
    '2',
    ' ',
    'x',
    'states',
    'now()',
  ];
  const templateLike = fc.array(fc.constantFrom(...pieces), { maxLength: 40 }).map((parts) => parts.join(''));
  const anyValue = fc.oneof(fc.string(), fc.jsonValue(), fc.constant(undefined));

  const onlyTemplateErrors = (source: string, value: unknown, json: unknown) => {
    let compiled: ReturnType<typeof compileTemplate>;
    try {
      compiled = compileTemplate(source);
    } catch (error) {
      if (!(error instanceof TemplateError)) throw error;
      return;
    }
    try {
      compiled.render({ value, value_json: json, brightness: value });
    } catch (error) {
      if (!(error instanceof TemplateError)) throw error;
    }
  };

  test('random text compiles or fails with a TemplateError, and renders the same way', { timeout: 60_000 }, () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), anyValue, anyValue, onlyTemplateErrors), { numRuns: 2000 });
  });

  test('random template-shaped text does too', { timeout: 60_000 }, () => {
    fc.assert(fc.property(templateLike, anyValue, anyValue, onlyTemplateErrors), { numRuns: 5000 });
  });
});

describe('Jinja forms copied from Home Assistant configs', () => {
  /** Renders and reports a TemplateError's message instead of throwing, for comparing two forms. */
  const outcome = (source: string, vars: Record<string, unknown>) => {
    try {
      return { value: render(source, vars) };
    } catch (error) {
      if (!(error instanceof TemplateError)) throw error;
      return { error: error.message };
    }
  };

  test('keyword arguments use Jinja and Home Assistant parameter names', () => {
    assert.equal(render('{{ value_json.temp | float(default=0) }}', { value_json: { temp: 'n/a' } }), 0);
    assert.equal(render('{{ value_json.temp | float(default=0) }}', { value_json: { temp: '21.5' } }), 21.5);
    assert.equal(render('{{ value | int(default=-1) }}', { value: 'x' }), -1);
    assert.equal(render("{{ value | round(1, method='floor') }}", { value: 2.57 }), 2.5);
    assert.equal(render('{{ value | round(precision=2) }}', { value: 21.4567 }), 21.46);
    assert.equal(render("{{ value | round(method='ceil', precision=1) }}", { value: 2.51 }), 2.6);
    assert.equal(render("{{ value | round(2, default='?') }}", { value: 'x' }), '?');
    assert.equal(render("{{ value_json.x | default(default_value='n/a') }}", { value_json: {} }), 'n/a');
    assert.equal(render("{{ '' | default('x', boolean=true) }}"), 'x');
    assert.equal(render("{{ '' | d(boolean=true, default_value='x') }}"), 'x');
    assert.equal(render("{{ 'aaaa' | replace('a', 'b', count=2) }}"), 'bbaa');
    assert.equal(render("{{ 'aaaa' | replace(old='a', new='b') }}"), 'bbbb');
    assert.equal(render("{{ value | bool(default='unknown') }}", { value: 'maybe' }), 'unknown');
    assert.equal(render('{{ value | round(1,) }}', { value: 2.57 }), 2.6, 'a trailing comma, as Jinja allows');
  });

  test("replace follows Python's str.replace, count included", () => {
    assert.equal(render("{{ 'aaaa' | replace('a', 'b', 2) }}"), 'bbaa');
    assert.equal(render("{{ 'aaaa' | replace('a', 'b', 0) }}"), 'aaaa');
    assert.equal(render("{{ 'aaaa' | replace('a', 'b', -3) }}"), 'bbbb');
    assert.equal(render("{{ 'abc' | replace('', '-') }}"), '-a-b-c-');
    assert.equal(render("{{ 'abc' | replace('', '-', 2) }}"), '-a-bc');
    assert.equal(render("{{ 'a1b' | replace(1, 2) }}"), 'a2b', 'old and new go through str()');
  });

  test("Home Assistant's float(), int() and bool() functions, with keywords too", () => {
    assert.equal(render('{{ float(value, default=0) }}', { value: 'n/a' }), 0);
    assert.equal(render('{{ float(value) * 2 }}', { value: '1.5' }), 3);
    assert.equal(render("{{ int('0x1A', base=16) }}"), 26);
    // As in Home Assistant's int(value, default, base), the second positional argument is the default.
    assert.equal(render("{{ int('0x1A', 16) }}"), 16);
    assert.equal(render("{{ int('0x1A', 0, 16) }}"), 26);
    assert.equal(render('{{ int(value, base=16) }}', { value: '1A' }), 26);
    assert.equal(render('{{ bool(value, false) }}', { value: 'maybe' }), false);
    assert.throws(() => compileTemplate('{{ float() }}'), /float\(\) needs value/);
    assert.throws(() => compileTemplate('{{ round(value) }}'), /function calls such as round/);
  });

  const refused: Array<[string, RegExp]> = [
    ['{{ value | float(fallback=0) }}', /float has no argument named "fallback": it takes default/],
    ["{{ value | round(1, mode='floor') }}", /round has no argument named "mode"/],
    ['{{ value | lower(x=1) }}', /lower has no argument named "x": it takes no arguments/],
    ['{{ value | round(precision=1, 2) }}', /positional argument cannot follow a keyword/],
    ['{{ value | round(1, precision=2) }}', /round got "precision" twice/],
    ['{{ value | int(default=1, default=2) }}', /int got "default" twice/],
    ['{{ value | float(1, 2) }}', /float takes at most 1 \(default\), but 2 were given/],
    ['{{ value | upper(1) }}', /upper takes no arguments/],
    ["{{ value | replace('a') }}", /replace needs new/],
    ["{{ value | replace(new='b') }}", /replace needs old/],
    ['{{ value | float(= 1) }}', /unexpected "="/],
  ];
  for (const [source, message] of refused) {
    test(`refuses ${source}`, () => {
      assert.throws(
        () => compileTemplate(source),
        (error: unknown) => error instanceof TemplateError && message.test(error.message),
      );
    });
  }

  test('a keyword argument means the same as the positional one', () => {
    const pairs: Array<[string, string]> = [
      ['float(default=d)', 'float(d)'],
      ['int(default=d)', 'int(d)'],
      ['int(default=d, base=16)', 'int(d, 16)'],
      ['round(precision=2)', 'round(2)'],
      ["round(1, method='floor')", "round(1, 'floor')"],
      ['round(default=d)', "round(0, 'common', d)"],
      ['default(default_value=d)', 'default(d)'],
      ['default(d, boolean=true)', 'default(d, true)'],
      ["replace('a', 'b', count=1)", "replace('a', 'b', 1)"],
      ['bool(default=d)', 'bool(d)'],
    ];
    const values = fc.oneof(fc.string({ maxLength: 8 }), fc.jsonValue(), fc.constant(undefined));
    fc.assert(
      fc.property(fc.constantFrom(...pairs), values, values, ([keyword, positional], value, d) => {
        const vars = { value, d };
        assert.deepEqual(outcome(`{{ value | ${keyword} }}`, vars), outcome(`{{ value | ${positional} }}`, vars));
      }),
      { numRuns: 1000 },
    );
  });

  test('comparisons chain as in Python: 1 < x < 5 is 1 < x and x < 5', () => {
    assert.equal(render('{{ 1 < value | float < 5 }}', { value: '3' }), true);
    assert.equal(render('{{ 1 < value | float < 5 }}', { value: '7' }), false);
    assert.equal(render('{{ 1 < value | float < 5 }}', { value: '1' }), false);
    assert.equal(render('{{ 0 <= value_json.x <= 100 }}', { value_json: { x: 100 } }), true);
    assert.equal(render('{{ 1 < 2 == 2 }}'), true);
    assert.equal(render('{{ 1 < 2 < 3 < 2 }}'), false);
    assert.equal(render("{{ 'a' in 'abc' in 'xabcx' }}"), true);
    assert.equal(render("{{ 'a' in 'abc' not in 'xabcx' }}"), false);
    assert.equal(render('{{ "on" if 1 < value < 5 else "off" }}', { value: 3 }), 'on');
    // Python stops at the first false link: the comparison with a string is never made.
    assert.equal(render("{{ 5 < 1 < 'a' }}"), false);
    assert.throws(() => render("{{ 1 < 2 < 'a' }}"), /cannot compare/);
  });

  test('the middle operand of a chain is evaluated once', () => {
    let reads = 0;
    const vars = {
      get value() {
        reads++;
        return '3';
      },
    };
    assert.equal(render('{{ 1 < value | float < 5 }}', vars), true);
    assert.equal(reads, 1);
  });

  test('a chain is the same as the comparisons joined by and', () => {
    const ops = ['<', '<=', '>', '>=', '==', '!='];
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -3, max: 3 }), { minLength: 3, maxLength: 5 }),
        fc.array(fc.constantFrom(...ops), { minLength: 4, maxLength: 4 }),
        (operands, chosen) => {
          const chain = operands.map((n, i) => (i === 0 ? `${n}` : ` ${chosen[i - 1]} ${n}`)).join('');
          const joined = operands
            .slice(1)
            .map((n, i) => `(${operands[i]} ${chosen[i]} ${n})`)
            .join(' and ');
          assert.equal(render(`{{ ${chain} }}`), render(`{{ ${joined} }}`), chain);
        },
      ),
      { numRuns: 500 },
    );
  });

  test("round's common method is Python's round: half to even, on the exact binary value", () => {
    assert.equal(render('{{ 2.5 | round }}'), 2);
    assert.equal(render('{{ 3.5 | round }}'), 4);
    assert.equal(render('{{ value | round }}', { value: -2.5 }), -2);
    assert.equal(render('{{ value | round }}', { value: 40.5 }), 40);
    assert.equal(render('{{ 0.125 | round(2) }}'), 0.12, '0.125 is exact, so a true tie');
    assert.equal(render('{{ 0.375 | round(2) }}'), 0.38);
    assert.equal(render('{{ 2.675 | round(2) }}'), 2.67, '2.675 is stored as 2.67499999…');
    assert.equal(render('{{ 1.005 | round(2) }}'), 1);
    assert.equal(render('{{ 0.5 | round }}'), 0);
    assert.equal(render("{{ '21.25' | round(1) }}"), 21.2);
    assert.equal(render('{{ value | round(1, "floor") }}', { value: -2.57 }), -2.6);
    assert.equal(render('{{ value | round(1, "ceil") }}', { value: 2.51 }), 2.6);
    assert.equal(render('{{ value | round(1, "half") }}', { value: 2.3 }), 2.5);
    assert.equal(render('{{ value | round(method="half") }}', { value: 2.3 }), 2, "HA's int() at precision 0");
  });

  test('round(precision) agrees with exact decimal rounding, ties to even', () => {
    // Dyadic values have short exact decimal expansions, so toFixed(40) shows every digit.
    const dyadic = fc
      .tuple(fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), fc.integer({ min: 0, max: 12 }))
      .map(([n, j]) => n / 2 ** j);
    fc.assert(
      fc.property(dyadic, fc.integer({ min: 0, max: 6 }), (x, p) => {
        const exact = Math.abs(x).toFixed(40);
        const point = exact.indexOf('.');
        const kept = exact.slice(0, point + 1 + p);
        const rest = exact.slice(point + 1 + p);
        const sign = x < 0 ? -1 : 1;
        let expected: number;
        if (/^50*$/.test(rest)) {
          const lastDigit = Number(kept.replace('.', '').slice(-1));
          expected = sign * (lastDigit % 2 === 0 ? Number(kept) : Number(Math.abs(x).toFixed(p)));
        } else {
          expected = sign * Number(Math.abs(x).toFixed(p));
        }
        assert.equal((render(`{{ value | round(${p}) }}`, { value: x }) as number) + 0, expected + 0, `${x} ${p}`);
      }),
      { numRuns: 3000 },
    );
  });

  test("int of a string is Python's int(value, base), then int(float(value)), then the default", () => {
    assert.throws(
      () => render("{{ '0x1A' | int }}"),
      /int: cannot convert "0x1A"/,
      'not 26: base 10 and float() refuse it',
    );
    assert.equal(render("{{ '0x1A' | int(0) }}"), 0, "Jinja's do_int gives its default");
    assert.equal(render("{{ '0x1A' | int(default=7) }}"), 7);
    assert.equal(render("{{ '0x1A' | int(0, 16) }}"), 26);
    assert.equal(render("{{ '0x1A' | int(base=16) }}"), 26);
    assert.equal(render("{{ '1a' | int(base=16) }}"), 26);
    assert.equal(render("{{ '-0x1a' | int(base=16) }}"), -26);
    assert.equal(render("{{ '0x_1a' | int(base=16) }}"), 26);
    assert.equal(render("{{ '0b1' | int(base=16) }}"), 177, '0b is not a prefix in base 16: hex 0b1');
    assert.equal(render("{{ '0o17' | int(base=8) }}"), 15);
    assert.equal(render("{{ '0b101' | int(base=2) }}"), 5);
    assert.equal(render("{{ '0x1A' | int(base=0) }}"), 26);
    assert.equal(render("{{ '010' | int(base=0) }}"), 10, 'int("010", 0) fails; float("010") is 10');
    assert.equal(render("{{ 'z' | int(base=36) }}"), 35);
    assert.equal(render("{{ '1_000' | int }}"), 1000);
    assert.equal(render("{{ ' 12 ' | int }}"), 12);
    assert.equal(render("{{ '1e3' | int }}"), 1000);
    assert.equal(render("{{ '-0.5' | int }}"), 0);
    assert.equal(render("{{ 'inf' | int(7) }}"), 7);
    assert.equal(render("{{ '12' | int(base=1) }}"), 12, 'a bad base fails int(); float("12") still reads it');
    assert.equal(render('{{ 26.9 | int(base=16) }}'), 26, 'the base is ignored for numbers');
    assert.equal(render("{{ '0x1A' | float(5) }}"), 5, 'float("0x1A") fails in Python');
    assert.equal(render("{{ '1_000.5' | float }}"), 1000.5);
  });

  test('int(base=16) reads any hexadecimal spelling of a whole number', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 60n), max: 2n ** 60n }), fc.boolean(), fc.boolean(), (n, prefix, upper) => {
        let digits = (n < 0n ? -n : n).toString(16);
        if (upper) digits = digits.toUpperCase();
        const text = `${n < 0n ? '-' : ''}${prefix ? '0x' : ''}${digits}`;
        assert.equal(render('{{ value | int(base=16) }}', { value: text }), Number(n));
        assert.equal(render('{{ int(value, base=16) }}', { value: text }), Number(n));
      }),
      { numRuns: 1000 },
    );
  });
});
