import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import mqtt from 'mqtt';
import { MAX_PAYLOAD_DEPTH, nestedDeeperThan, parseJson } from '../../src/automation/engine.ts';
import { VirtualClock } from '../../src/core/clock.ts';
import { eventually } from '../helpers/hub-process.ts';
import { postRule, startTestHub, type TestHub, tracesOf } from './helpers.ts';

const T0 = Date.UTC(2026, 5, 1, 8);
const hubs: TestHub[] = [];
after(async () => {
  for (const h of hubs) await h.hub.stop();
});

/** How many lists and objects deep a value goes: 0 for a number or a text, 1 for `{}`. */
function depthOf(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  let deepest = 0;
  for (const inner of Object.values(value)) deepest = Math.max(deepest, depthOf(inner));
  return deepest + 1;
}

/** Keys and texts that look like brackets, quotes and escapes, which a shortcut through the text could miscount. */
const tricky = fc.string({ unit: fc.constantFrom('{', '}', '[', ']', '"', '\\', 'a', ':', ','), maxLength: 6 });
const leaf = fc.oneof(fc.jsonValue({ maxDepth: 2 }), tricky);
/** A value wrapped `depth` times in lists or objects, with neighbours beside each wrapper. */
const nested = (depth: fc.Arbitrary<number>) =>
  fc
    .tuple(depth, leaf, fc.array(fc.tuple(fc.boolean(), tricky, leaf), { minLength: 120, maxLength: 120 }))
    .map(([n, inside, wrappers]) => {
      let value: unknown = inside;
      for (const [asList, key, beside] of wrappers.slice(0, n))
        value = asList ? [beside, value] : { [key]: value, [`${key}.`]: beside };
      return value;
    });

describe('payloads nested too deep', () => {
  it('property: a value is refused exactly when it is nested deeper than the limit', () => {
    fc.assert(
      fc.property(nested(fc.integer({ min: 0, max: 12 })), fc.integer({ min: 0, max: 10 }), (value, limit) => {
        assert.equal(nestedDeeperThan(value, limit), depthOf(value) > limit);
      }),
      { numRuns: 2000 },
    );
  });

  it('property: an MQTT payload’s JSON is kept up to the limit and null past it or when not JSON', () => {
    const text = fc.oneof(
      nested(fc.integer({ min: MAX_PAYLOAD_DEPTH - 3, max: MAX_PAYLOAD_DEPTH + 3 })).chain((value) =>
        fc.constantFrom(JSON.stringify(value), JSON.stringify(value, null, 1)),
      ),
      fc.string({ unit: fc.constantFrom('{', '}', '[', ']', '"', '\\', '1', ':', ',', ' '), maxLength: 230 }),
      fc.jsonValue().map((value) => JSON.stringify(value)),
    );
    fc.assert(
      fc.property(text, (payload) => {
        let expected: unknown = null;
        try {
          const json = JSON.parse(payload);
          expected = depthOf(json) > MAX_PAYLOAD_DEPTH ? null : json;
        } catch {}
        assert.deepEqual(parseJson(payload), expected);
      }),
      { numRuns: 1500 },
    );
  });

  it('through the hub: an MQTT payload 100 deep reaches the rule as JSON, 101 deep as text only', async () => {
    const t = await startTestHub({ clock: new VirtualClock(T0) });
    hubs.push(t);
    const client = await mqtt.connectAsync(t.hub.mqttUrl, { clientId: 'payload-depth-test' });
    try {
      await postRule(t, {
        id: 'deep-mqtt',
        mode: 'queued',
        triggers: [{ trigger: 'mqtt', topic: 'sensors/deep' }],
        actions: [
          { action: 'notify', message: 'json {{ trigger.payload_json != null }}, {{ len(trigger.payload) }} chars' },
        ],
      });
      const nest = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
      for (const n of [100, 101, 20_000, 1]) await client.publishAsync('sensors/deep', nest(n), { qos: 1 });
      const traces = await eventually(async () => {
        const all = await tracesOf(t, 'deep-mqtt');
        return all.length === 4 && all.every((trace) => trace.status === 'finished') && all;
      });
      assert.deepEqual(
        traces.map((trace) => trace.steps[0].detail),
        ['json true, 601 chars', 'json false, 607 chars', 'json false, 120001 chars', 'json true, 7 chars'],
      );
    } finally {
      await client.endAsync();
    }
  });

  it('through the hub: a webhook body 101 deep is refused with body_too_deep, 100 deep runs', async () => {
    const t = await startTestHub({ clock: new VirtualClock(T0) });
    hubs.push(t);
    await postRule(t, {
      id: 'deep-hook',
      triggers: [{ trigger: 'webhook', webhook_id: 'deep-hook-00000' }],
      actions: [{ action: 'notify', message: 'ran' }],
    });
    const send = (n: number) =>
      t.api('/api/automations/webhooks/deep-hook-00000', {
        method: 'POST',
        body: `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`,
      });
    const refused = await send(101);
    assert.equal(refused.status, 400);
    assert.deepEqual(((await refused.json()) as { error: { code: string; message: string } }).error, {
      code: 'body_too_deep',
      message: 'the body is nested more than 100 deep',
    });
    await t.engine.settled();
    assert.equal((await tracesOf(t, 'deep-hook')).length, 0, 'no run');
    assert.equal((await send(100)).status, 200);
    await t.engine.settled();
    assert.deepEqual(
      (await tracesOf(t, 'deep-hook')).map((trace) => trace.status),
      ['finished'],
    );
  });
});
