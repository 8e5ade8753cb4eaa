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
