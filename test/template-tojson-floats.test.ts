import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compileTemplate, JsonPayload } from '../src/adapters/mqtt/template.ts';

/**
 * Jinja's tojson (and Home Assistant's to_json) write a float as Python's json does: `21.0`,
 * wherever it is. A whole float read from a JSON payload (`{"t": 21.0}`) is the JavaScript
 * number 21, which JSON.stringify writes `21`; the template keeps the payload's own spelling
 * beside its data, and tojson now asks it for lists and dicts too, as it did for a lone value.
 * The real template engine, given payloads as the MQTT adapter gives them.
 */
const fromPayload = (source: string, payload: string) =>
  compileTemplate(source).renderText({ value: payload, value_json: new JsonPayload(payload) });

describe('tojson writes a whole float as a float, as Home Assistant does', () => {
  test('a float alone, in a dict and in a list of a payload', () => {
    const payload = '{"t": 21.0, "h": 40, "l": [1.0, 2, 2.5e0], "n": {"deep": [0.0]}}';
    assert.equal(fromPayload('{{ value_json.t | tojson }}', payload), '21.0');
    assert.equal(fromPayload('{{ value_json.h | tojson }}', payload), '40', 'an int stays an int');
    assert.equal(fromPayload('{{ value_json.l | tojson }}', payload), '[1.0,2,2.5]');
    assert.equal(fromPayload('{{ value_json.n | to_json }}', payload), '{"deep":[0.0]}');
    assert.equal(
      fromPayload('{{ value_json | tojson }}', payload),
      '{"t":21.0,"h":40,"l":[1.0,2,2.5],"n":{"deep":[0.0]}}',
    );
    assert.equal(fromPayload('{{ value_json | tojson }}', '[1e3, 10]'), '[1000.0,10]', 'an exponent makes a float');
  });

  test('a list literal and a computed float', () => {
    assert.equal(fromPayload('{{ [1.0, 2, none, true, "x"] | tojson }}', '{}'), '[1.0,2,null,true,"x"]');
    assert.equal(fromPayload('{{ [value | float] | tojson }}', '21'), '[21.0]');
  });

  test('what JSON.stringify writes anyway stays as it was', () => {
    const payload = '{"s": "a\\"b", "b": false, "z": null, "e": {}, "a": []}';
    assert.equal(fromPayload('{{ value_json | tojson }}', payload), JSON.stringify(JSON.parse(payload)));
    assert.equal(fromPayload('{{ value_json.missing | tojson }}', payload), 'null');
  });
});
