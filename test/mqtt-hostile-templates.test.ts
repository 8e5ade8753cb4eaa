import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { compileTemplate, JsonPayload, MAX_TEXT_LENGTH, TemplateError } from '../src/adapters/mqtt/template.ts';
import { Hub } from '../src/core/hub.ts';
import { createLogger, type LogLine } from '../src/core/log.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';

/**
 * A template that grows a text without bound: `replace('a', 'aaaaaaaaaa')` written nine times
 * turned a one-letter message into a billion characters, froze the hub for 6.7 s and took 2 GB at
 * every message. Every text a template makes, its result and each step, is now capped (four times
 * the 64 KiB a state message may hold), and a step that would go over is refused before it builds
 * its text.
 */

/** `value | replace('a','aaaaaaaaaa') | …` with `times` replaces: 10 ** times letters from one. */
const hostile = (times: number) =>
  `{{ value | ${Array.from({ length: times }, () => "replace('a','aaaaaaaaaa')").join(' | ')} }}`;

/** The MiB the process's resident memory grew by while `run` ran. */
function growthMiB(run: () => void): number {
  const before = process.memoryUsage().rss;
  run();
  return (process.memoryUsage().rss - before) / 2 ** 20;
}

/** Renders `source` with `vars`; the TemplateError it throws, which the test expects. */
function refusal(source: string, vars: Record<string, unknown>): TemplateError {
  const template = compileTemplate(source);
  const started = performance.now();
  let error: unknown;
  const grew = growthMiB(() => {
    try {
      template.renderText(vars);
    } catch (thrown) {
      error = thrown;
    }
  });
  const ms = performance.now() - started;
  assert.ok(error instanceof TemplateError, `${source.slice(0, 60)} is refused (got ${String(error)})`);
  assert.match(error.message, new RegExp(`longer than ${MAX_TEXT_LENGTH} characters`));
  assert.ok(ms < 250, `refused in ${ms.toFixed(0)} ms`);
  assert.ok(grew < 64, `memory grew ${grew.toFixed(0)} MiB`);
  return error;
}

describe('template text limit', () => {
  it('refuses the reviewer’s nine replaces at once, with little memory', () => {
    assert.equal(hostile(9).length, 263);
    const error = refusal(hostile(9), { value: 'a' });
    assert.match(error.message, /^replace would make a text longer than/);
  });

  it('checks what a replace would make before making it, to the character', () => {
    const half = MAX_TEXT_LENGTH / 2;
    const doubled = compileTemplate("{{ value | replace('a', 'aa') }}");
    assert.equal((doubled.renderText({ value: 'a'.repeat(half) }) as string).length, MAX_TEXT_LENGTH);
    refusal("{{ value | replace('a', 'aa') }}", { value: 'a'.repeat(half + 1) });
    // count limits what is replaced, so the same text with a count fits.
    const counted = compileTemplate("{{ value | replace('a', 'aa', 10) }}");
    assert.equal((counted.renderText({ value: 'a'.repeat(half + 1) }) as string).length, half + 11);
    // A replacement no longer than what it replaces cannot grow the text.
    assert.equal(
      compileTemplate("{{ value | replace('ab', 'c') }}").renderText({ value: 'ab'.repeat(half) }).length,
      half,
    );
  });

  it("refuses replace('', x), which inserts x around every character", () => {
    refusal("{{ value | replace('', 'xxxxxxxxxx') | replace('', 'xxxxxxxxxx') | replace('', 'xxxxxxxxxx') }}", {
      value: 'abcdefghij'.repeat(100),
    });
    assert.equal(compileTemplate("{{ value | replace('', '-') }}").renderText({ value: 'ab' }), '-a-b-');
  });

  it('refuses every other way to grow a text: tojson, printing a list, ~, +, text around expressions', () => {
    const quotes = { value: '"\\'.repeat(40_000) };
    refusal(`{{ value${' | tojson'.repeat(4)} }}`, quotes);
    refusal('{{ [value, value, value, value] | string }}', quotes);
    refusal('{{ [value, value, value, value] | tojson }}', quotes);
    refusal('{{ value ~ value ~ value ~ value }}', { value: 'x'.repeat(80_000) });
    refusal('{{ value + value + value + value }}', { value: 'x'.repeat(80_000) });
    refusal('<{{ value }}{{ value }}{{ value }}{{ value }}>', { value: 'x'.repeat(80_000) });
    refusal('{{ value | upper | string }}', { value: 'ß'.repeat(MAX_TEXT_LENGTH / 2 + 1) });
  });

  it('still renders the largest state message whole, Python-quoted', () => {
    // 64 KiB of JSON that Python's repr makes longer (`, ` and `'` for `,` and `"`).
    const items = Array.from({ length: 6000 }, (_, i) => `"k${i}":[0,0,0,"x"]`);
    const text = `{${items.join(',')}}`.slice(0, 64 * 1024 - 1);
    const json = `${text.slice(0, text.lastIndexOf(',"k'))}}`;
    assert.ok(json.length > 60_000);
    const printed = compileTemplate('{{ value_json }}').renderText({ value: json, value_json: new JsonPayload(json) });
    assert.ok(printed.length > json.length, 'the repr is longer than the JSON');
    assert.ok(printed.startsWith("{'k0': [0, 0, 0, 'x']"));
  });
});

describe('a hostile template on a live hub', () => {
  let hub: Hub;
  let device: MqttClient;
  const lines: LogLine[] = [];

  before(async () => {
    hub = new Hub({
      dataDir: await tempDir('triad-hostile-templates-'),
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1', allowAnonymous: true },
      log: createLogger({ level: 'warn', sink: (line) => lines.push(line) }),
    });
    await hub.start();
    device = await mqtt.connectAsync(hub.mqttUrl, { clientId: 'hostile-templates-device' });
  });

  after(async () => {
    await device?.endAsync();
    await hub?.stop();
  });

  it('keeps the hub responsive and its memory bounded, and logs the failure once', async () => {
    const thingNamed = (name: string) => hub.twins.list(hub.householdId).find((t) => t.thing.name === name)?.thing;
    await device.publishAsync(
      'homeassistant/sensor/boom/config',
      JSON.stringify({ name: 'Boom', stat_t: 'boom/state', val_tpl: hostile(9) }),
      { qos: 1, retain: true },
    );
    await device.publishAsync(
      'homeassistant/sensor/calm/config',
      JSON.stringify({ name: 'Calm', stat_t: 'calm/state', dev_cla: 'temperature', unit_of_meas: '°C' }),
      { qos: 1, retain: true },
    );
    const boom = await eventually(() => thingNamed('Boom')?.id, { what: 'the thing Boom' });
    const calm = await eventually(() => thingNamed('Calm')?.id, { what: 'the thing Calm' });
    const health = async () => {
      const started = performance.now();
      const res = await fetch(`${hub.httpUrl}/api/health`);
      await res.arrayBuffer();
      return { status: res.status, ms: performance.now() - started };
    };
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const slowest: number[] = [];
    for (let i = 0; i < 3; i++) {
      await device.publishAsync('boom/state', 'a', { qos: 1 });
      // The hub handles the message while these are asked.
      for (let j = 0; j < 5; j++) {
        const answer = await health();
        assert.equal(answer.status, 200);
        slowest.push(answer.ms);
        rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
      }
    }
    const failures = () =>
      lines.filter((line) => line.level === 'warn' && line.message.includes('state on boom/state not read'));
    await eventually(() => failures().length > 0, { what: 'the template failure logged' });
    // The last message is handled once the calm sensor's, sent after it, is.
    await device.publishAsync('calm/state', '21.5', { qos: 1 });
    await eventually(() => hub.twins.value(hub.householdId, calm, 'sensor.temperature') === 21.5, {
      what: 'the calm sensor read after the hostile messages',
    });
    assert.ok(
      Math.max(...slowest) < 500,
      `/api/health answered within 500 ms (slowest ${Math.max(...slowest).toFixed(0)} ms)`,
    );
    const grewMiB = (rssPeak - rssBefore) / 2 ** 20;
    assert.ok(grewMiB < 128, `memory grew ${grewMiB.toFixed(0)} MiB`);
    assert.equal(failures().length, 1, 'logged once, not at every message');
    assert.match(failures()[0].message, /value_template: replace would make a text longer than 262144 characters/);
    const properties = Object.keys(thingNamed('Boom')?.properties ?? {});
    assert.ok(properties.length > 0);
    for (const property of properties) {
      assert.equal(hub.twins.value(hub.householdId, boom, property), undefined, `nothing stored in Boom's ${property}`);
    }
  });
});
