import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { nextCron, parseCron } from '../src/automation/time/cron.ts';
import { nextTimeOfDay } from '../src/automation/time/duration.ts';
import { VirtualClock } from '../src/core/clock.ts';
import { EnergyService } from '../src/energy/index.ts';
import { vocabularyProperties } from '../src/model/thing.ts';
import { advance, MIN, postRule, startTestHub, type TestHub, tracesOf } from './automation/helpers.ts';

// The hub runs in New York (as a hub in a container runs in UTC); the household it serves lives
// in Auckland, by its tariff's time zone. In January Auckland is UTC+13 and New York UTC−5.
process.env.TZ = 'America/New_York';

const HOUR = 60 * MIN;
const MONDAY = Date.UTC(2026, 0, 5); // 00:00 UTC: Monday 13:00 in Auckland, Sunday 19:00 in New York
const notify = [{ action: 'notify', message: 'morning' }];
const iso = (ms: number) => new Date(ms).toISOString();

async function firedAt(t: TestHub, rule: string): Promise<string[]> {
  return (await tracesOf(t, rule)).filter((trace) => trace.status !== 'condition_failed').map((x) => iso(x.trigger.ts));
}

async function setTariffZone(t: TestHub, timeZone: string): Promise<void> {
  const response = await t.api('/api/energy/tariff', {
    method: 'PUT',
    body: JSON.stringify({ currency: 'NZD', fixed: 0.3, timeZone }),
  });
  assert.equal(response.status, 200, await response.text());
  await t.engine.settled();
}

describe("automations run on the household's clocks, not the hub process's", () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const h of hubs) await h.hub.stop();
  });

  async function household(start: number): Promise<{ t: TestHub; clock: VirtualClock }> {
    const clock = new VirtualClock(start);
    const t = await startTestHub({ clock, subsystems: [new EnergyService()] });
    hubs.push(t);
    return { t, clock };
  }

  it('an `at: "07:00"`, a Tuesday cron, a time condition and hour() all mean 07:00 in Auckland', async () => {
    const { t, clock } = await household(MONDAY);
    await setTariffZone(t, 'Pacific/Auckland');
    await postRule(t, { id: 'at-seven', triggers: [{ trigger: 'time', at: '07:00' }], actions: notify });
    // Tuesday 07:00 in Auckland is still Monday in UTC and in New York.
    await postRule(t, { id: 'tuesdays', triggers: [{ trigger: 'cron', pattern: '0 7 * * tue' }], actions: notify });
    const hourly = [{ trigger: 'cron', pattern: '0 * * * *' }];
    await postRule(t, {
      id: 'morning-window',
      triggers: hourly,
      conditions: [{ condition: 'time', after: '06:30', before: '07:30', weekday: ['tue'] }],
      actions: notify,
    });
    await postRule(t, {
      id: 'hour-is-seven',
      triggers: hourly,
      conditions: [{ condition: 'expression', expression: 'hour() == 7 and minute() == 0 and weekday() == 2' }],
      actions: notify,
    });
    await advance(clock, 36 * HOUR, HOUR);
    const seven = ['2026-01-05T18:00:00.000Z']; // Tuesday 07:00 NZDT; New York's 07:00 would be 12:00Z
    assert.deepEqual(await firedAt(t, 'at-seven'), seven);
    assert.deepEqual(await firedAt(t, 'tuesdays'), seven, "Tuesday is the household's Tuesday");
    assert.deepEqual(await firedAt(t, 'morning-window'), seven, 'the time condition reads the same clocks');
    assert.deepEqual(await firedAt(t, 'hour-is-seven'), seven, 'hour(), minute() and weekday() too');
    const [trace] = await tracesOf(t, 'at-seven');
    assert.equal(trace.trigger.description, 'time 07:00:00', 'the trace says the time as the household reads it');
  });

  it('changing the tariff’s time zone moves a pending `at:` and cron to the new clocks', async () => {
    const { t, clock } = await household(MONDAY);
    await setTariffZone(t, 'Pacific/Auckland');
    await postRule(t, { id: 'at-seven', triggers: [{ trigger: 'time', at: '07:00' }], actions: notify });
    await postRule(t, { id: 'cron-seven', triggers: [{ trigger: 'cron', pattern: '0 7 * * *' }], actions: notify });
    await advance(clock, HOUR, HOUR);
    // Armed for 18:00Z (07:00 in Auckland); the household moves to Berlin (UTC+1) before then.
    await setTariffZone(t, 'Europe/Berlin');
    await advance(clock, 30 * HOUR, HOUR);
    // 07:00 CET that morning and the next; never 18:00Z, Auckland's 07:00 it was armed for.
    const berlin = ['2026-01-05T06:00:00.000Z', '2026-01-06T06:00:00.000Z'];
    assert.deepEqual(await firedAt(t, 'at-seven'), berlin);
    assert.deepEqual(await firedAt(t, 'cron-seven'), berlin);
  });

  it('without a tariff zone the household is on the hub’s own zone, for rules, plans and the session alike', async () => {
    const { t, clock } = await household(MONDAY);
    const session = (await (await t.api('/api/session')).json()) as { timeZone: string };
    assert.equal(session.timeZone, 'America/New_York');
    await postRule(t, { id: 'at-seven', triggers: [{ trigger: 'time', at: '07:00' }], actions: notify });
    // A charge plan "by 07:00" is on the same clocks as the rule's 07:00.
    await t.hub.core.upsertThing({
      id: 'car',
      name: 'Car',
      householdId: t.hub.householdId,
      kind: 'vehicle',
      adapter: 'core',
      properties: vocabularyProperties(['battery.level', 'battery.capacity']),
      actions: {},
    });
    t.hub.core.ingest([
      { householdId: t.hub.householdId, thing: 'car', property: 'battery.level', value: 40, source: 'test' },
      { householdId: t.hub.householdId, thing: 'car', property: 'battery.capacity', value: 60, source: 'test' },
    ]);
    const charger = await t.api('/api/chargers', {
      method: 'POST',
      body: JSON.stringify({ chargePointId: 'carport', name: 'Carport' }),
    });
    assert.equal(charger.status, 201, await charger.clone().text());
    const { id } = (await charger.json()) as { id: string };
    const plan = await t.api('/api/energy/plans', {
      method: 'POST',
      body: JSON.stringify({ vehicle: 'car', charger: id, targetSoc: 50, by: '07:00' }),
    });
    assert.equal(plan.status, 201, await plan.clone().text());
    const seven = '2026-01-05T12:00:00.000Z'; // 07:00 EST
    assert.equal(((await plan.json()) as { by: string }).by, seven);
    await advance(clock, 24 * HOUR, HOUR);
    assert.deepEqual(await firedAt(t, 'at-seven'), [seven]);
  });
});

describe('the clock changes in a household zone other than the process’s', () => {
  // New York: 02:00 → 03:00 on Sunday 8 March 2026, 02:00 → 01:00 on Sunday 1 November 2026.
  // Judged from a process in Auckland, so nothing comes from the process's own zone.
  const zone = 'America/New_York';

  it('a wall time the night skips comes as late as the jump; one it repeats, in its first pass; once', () => {
    const saved = process.env.TZ;
    process.env.TZ = 'Pacific/Auckland';
    try {
      const night = parseCron('30 2 * * *');
      const early = parseCron('30 1 * * *');
      assert.ok(typeof night !== 'string' && typeof early !== 'string');
      const spring = Date.UTC(2026, 2, 8, 4, 0); // Saturday 23:00 EST
      assert.equal(iso(nextTimeOfDay(spring, 2.5 * 3600, undefined, zone)), '2026-03-08T07:30:00.000Z'); // 03:30 EDT
      assert.equal(iso(nextCron(night, spring, zone)), '2026-03-08T07:30:00.000Z');
      const fall = Date.UTC(2026, 9, 31, 4, 0); // Saturday 00:00 EDT, the day before
      const first = nextCron(early, fall + 24 * HOUR, zone);
      assert.equal(iso(first), '2026-11-01T05:30:00.000Z'); // 01:30 EDT, the first pass
      assert.equal(iso(nextCron(early, first, zone)), '2026-11-02T06:30:00.000Z', 'not again at 01:30 EST');
      assert.equal(iso(nextTimeOfDay(fall + 24 * HOUR, 1.5 * 3600, undefined, zone)), '2026-11-01T05:30:00.000Z');
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });
});
