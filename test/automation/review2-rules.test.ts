import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '../../src/core/clock.ts';
import { HOME, startTestHub, type TestHub } from './helpers.ts';

const T0 = new Date(2026, 5, 1, 8, 0).getTime();
const notify = [{ action: 'notify', message: 'x' }];

/**
 * Rules that were stored although a field was wrong, and so never did what they said: each is a
 * 400 naming the field, and nothing is stored.
 */
describe('automations: wrong values a rule was stored with (second review)', () => {
  let t: TestHub;
  before(async () => {
    t = await startTestHub({ clock: new VirtualClock(T0) });
    // Berlin: sun triggers and conditions need the household's location.
    await t.hub.store.saveHousehold({
      id: HOME,
      name: 'Home',
      settings: { home: { latitude: 52.52, longitude: 13.405 } },
      createdAt: T0,
    });
  });
  after(async () => {
    await t.hub.stop();
  });

  /** A rule fired by one trigger (and judged by the conditions given), as JSON. */
  const rule = (trigger: Record<string, unknown>, conditions: unknown[] = []) =>
    JSON.stringify({ id: 'bad-value', triggers: [trigger], conditions, actions: notify });
  const atMostAYear = { field: 'triggers[0].offset', message: /must be at most a year/ };
  const notText = { field: 'triggers[0].payload', message: /must be the text of the message/ };

  const cases: Array<{ what: string; body: string; type?: string; field: string; message: RegExp }> = [
    // A number of seconds was taken as it came: 1e300 s is a sunrise that never comes.
    {
      what: 'a sun offset of 1e300 seconds',
      body: rule({ trigger: 'sun', event: 'sunrise', offset: 1e300 }),
      ...atMostAYear,
    },
    {
      what: 'a sun offset of minus 31,000 years',
      body: rule({ trigger: 'sun', event: 'sunset', offset: -1e12 }),
      ...atMostAYear,
    },
    {
      what: 'a sun offset of .inf in YAML',
      body: 'id: far-sun\ntriggers:\n  - trigger: sun\n    event: sunrise\n    offset: .inf\nactions:\n  - action: notify\n    message: x\n',
      type: 'application/yaml',
      field: 'triggers[0].offset',
      message: /non-negative number of seconds/,
    },
    {
      what: 'a sun condition offset of 1e300 seconds',
      body: rule({ trigger: 'mqtt', topic: 'a/b' }, [{ condition: 'sun', after: 'sunset', after_offset: 1e300 }]),
      field: 'conditions[0].after_offset',
      message: /must be at most a year/,
    },
    // It was stored as the text "[object Object]", which no message is.
    {
      what: 'an mqtt payload that is a mapping',
      body: rule({ trigger: 'mqtt', topic: 'a/b', payload: { on: true } }),
      ...notText,
    },
    {
      what: 'an mqtt payload that is a list',
      body: rule({ trigger: 'mqtt', topic: 'a/b', payload: ['on'] }),
      ...notText,
    },
    {
      // YAML makes `__proto__` an ordinary key; set on the parsed variables it replaced their
      // prototype instead, and the variable was gone without a word.
      what: 'a variable named __proto__ in YAML',
      body: 'id: proto-var\ntriggers:\n  - trigger: mqtt\n    topic: a/b\nvariables:\n  __proto__: 1\nactions:\n  - action: notify\n    message: x\n',
      type: 'application/yaml',
      field: 'variables.__proto__',
      message: /is not a usable variable name/,
    },
    {
      what: 'a variables action naming __proto__ in YAML',
      body: 'id: proto-var\ntriggers:\n  - trigger: mqtt\n    topic: a/b\nactions:\n  - variables:\n      __proto__: {polluted: true}\n',
      type: 'application/yaml',
      field: 'actions[0].variables.__proto__',
      message: /is not a usable variable name/,
    },
  ];
  for (const c of cases) {
    it(`refuses ${c.what} with 400 naming ${c.field}, and stores nothing`, async () => {
      const response = await t.api('/api/automations', {
        method: 'POST',
        body: c.body,
        headers: { 'content-type': c.type ?? 'application/json' },
      });
      const { error } = (await response.json()) as { error: { code: string; message: string } };
      assert.equal(response.status, 400, error?.message);
      assert.equal(error.code, 'invalid_rule');
      assert.ok(error.message.includes(`${c.field}: `), error.message);
      assert.match(error.message, c.message);
      assert.deepEqual(await (await t.api('/api/automations')).json(), []);
      assert.deepEqual(await t.hub.store.listRules(HOME), []);
    });
  }

  it('still takes a sun offset in seconds, either way, and an mqtt payload that is a number', async () => {
    for (const [id, rule] of [
      ['early-sun', { triggers: [{ trigger: 'sun', event: 'sunrise', offset: -1800 }] }],
      ['late-sun', { triggers: [{ trigger: 'sun', event: 'sunset', offset: 600 }] }],
      ['mqtt-number', { triggers: [{ trigger: 'mqtt', topic: 'a/b', payload: 1 }] }],
    ] as const) {
      const response = await t.api('/api/automations', {
        method: 'POST',
        body: JSON.stringify({ id, ...rule, actions: notify }),
      });
      assert.equal(response.status, 201, await response.text());
      assert.equal((await t.api(`/api/automations/${id}`, { method: 'DELETE' })).status < 300, true);
    }
  });
});
