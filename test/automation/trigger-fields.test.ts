import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { VirtualClock } from '../../src/core/clock.ts';
import { createLogger, type LogLine } from '../../src/core/log.ts';
import { advance, HOME, postRule, startTestHub, type TestHub, tracesOf } from './helpers.ts';

const T0 = new Date(2026, 5, 1, 8, 0).getTime();
const WEBHOOK_ID = 'r5-start-hook';

interface ErrorBody {
  error: { code: string; message: string };
}

interface RuleView {
  id: string;
  status: string;
  warnings: string[];
}

/** A rule fired by a webhook only, whose notify says what the call's body held. */
function webhookRule(message: string) {
  return {
    id: 'r5-start',
    triggers: [{ trigger: 'webhook', webhook_id: WEBHOOK_ID }],
    actions: [{ action: 'notify', message }],
  };
}

/**
 * `trigger.<field>` is judged against the rule's own triggers, not every field any trigger has:
 * a webhook brings its body as `trigger.data`, and no `topic`, `zone` or `payload`.
 */
describe('automations: a rule reads only the trigger fields its own triggers bring', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const h of hubs) await h.hub.stop();
  });
  const hub = async (options: Parameters<typeof startTestHub>[0] = {}) => {
    const t = await startTestHub({ clock: new VirtualClock(T0), ...options });
    hubs.push(t);
    return t;
  };

  const refusals = [
    { field: 'payload', message: 'R5 start {{ trigger.payload.n }}', hint: true },
    { field: 'topic', message: '{{ trigger.topic }} {{ trigger.zone }}', hint: false },
    { field: 'zone', message: '{{ trigger.zone }}', hint: false },
  ];
  for (const c of refusals) {
    it(`refuses trigger.${c.field} in a webhook rule at save, naming it and what a webhook brings`, async () => {
      const t = await hub();
      const response = await t.api('/api/automations', {
        method: 'POST',
        body: JSON.stringify(webhookRule(c.message)),
      });
      assert.equal(response.status, 400);
      const { error } = (await response.json()) as ErrorBody;
      assert.equal(error.code, 'invalid_rule');
      assert.ok(
        error.message.startsWith(
          `actions[0].message: trigger has no field "${c.field}" (fields: id, type, cause, ts, data, description: what its webhook trigger brings)`,
        ),
        error.message,
      );
      assert.equal(error.message.includes('the body of a webhook call is trigger.data'), c.hint, error.message);
      assert.deepEqual(await t.hub.store.listRules(HOME), []);
    });
  }

  it('refuses a condition that reads a field the rule’s triggers do not bring', async () => {
    const t = await hub();
    const rule = { ...webhookRule('hi'), conditions: ['trigger.to == 1'] };
    const response = await t.api('/api/automations', { method: 'POST', body: JSON.stringify(rule) });
    assert.equal(response.status, 400);
    const { error } = (await response.json()) as ErrorBody;
    assert.match(error.message, /^conditions\[0\]: trigger has no field "to" \(fields: id, type, cause, ts, data, /);
  });

  it("renders the webhook's body from trigger.data, end to end", async () => {
    const t = await hub();
    await postRule(t, webhookRule('R5 start {{ trigger.data.n }}'));
    const views = (await (await t.api('/api/automations')).json()) as RuleView[];
    assert.deepEqual(views.find((v) => v.id === 'r5-start')?.warnings, []);
    const answer = await t.api(`/api/automations/webhooks/${WEBHOOK_ID}`, {
      method: 'POST',
      body: JSON.stringify({ n: 1 }),
    });
    assert.equal(answer.status, 200, await answer.clone().text());
    assert.deepEqual(await answer.json(), { fired: ['r5-start'], skipped: [] });
    await t.engine.settled();
    const notices = t.events.filter((e) => e.type === 'automation.notify');
    assert.deepEqual(
      notices.map((e) => ('data' in e ? (e.data as { message: string }).message : null)),
      ['R5 start 1'],
    );
    const [trace] = await tracesOf(t, 'r5-start');
    assert.deepEqual(trace.trigger.data, { n: 1 });
  });

  it('takes a field any of the rule’s triggers brings: trigger.to in a state rule, and with a webhook too', async () => {
    const t = await hub();
    const clock = t.hub.clock as VirtualClock;
    const stateTrigger = { trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' };
    await postRule(t, {
      id: 'humidity',
      triggers: [stateTrigger, { trigger: 'webhook', webhook_id: WEBHOOK_ID }],
      conditions: ['trigger.to != 0'],
      actions: [{ action: 'notify', message: 'humidity {{ trigger.to }} {{ trigger.data.n }}' }],
    });
    t.set('living-room-sensor', 'sensor.humidity', 55);
    await advance(clock, 1000);
    const [trace] = await tracesOf(t, 'humidity');
    assert.equal(trace.trigger.to, 55);
  });

  it('still loads a stored rule that reads a field its triggers do not bring, with a warning naming it', async () => {
    const first = await hub();
    // Stored before this check, when any trigger's field was taken: it must not vanish.
    await first.hub.store.saveRule({
      householdId: HOME,
      id: 'r5-start',
      body: webhookRule('R5 start {{ trigger.payload.n }}'),
      createdAt: T0,
      updatedAt: T0,
    });
    const dataDir = first.dataDir;
    await first.hub.stop();
    hubs.splice(hubs.indexOf(first), 1);

    const lines: LogLine[] = [];
    const t = await hub({ dataDir, log: createLogger({ level: 'warn', sink: (line) => lines.push(line) }) });
    const views = (await (await t.api('/api/automations')).json()) as RuleView[];
    const view = views.find((v) => v.id === 'r5-start');
    assert.equal(view?.status, 'active');
    assert.equal(view?.warnings.length, 1);
    assert.match(
      view?.warnings[0] ?? '',
      /^actions\[0\]\.message: trigger has no field "payload" .*trigger\.data, in \{\{ trigger\.payload\.n \}\}; it renders as nothing$/,
    );
    assert.ok(lines.some((l) => l.level === 'warn' && l.fields?.rule === 'r5-start'));
  });
});
