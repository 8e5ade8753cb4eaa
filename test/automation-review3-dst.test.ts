import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { nextCron, parseCron } from '../src/automation/time/cron.ts';
import { nextTimeOfDay } from '../src/automation/time/duration.ts';
import { VirtualClock } from '../src/core/clock.ts';
import { advance, MIN, postRule, startTestHub, type TestHub, tracesOf } from './automation/helpers.ts';

// The household lives in Berlin: the clocks jump 02:00 → 03:00 on Sunday 29 March 2026 and go
// back 03:00 → 02:00 on Sunday 25 October 2026. Schedules run in the hub's local time.
process.env.TZ = 'Europe/Berlin';

const HOUR = 60 * MIN;
const notify = [{ action: 'notify', message: 'night job' }];
const iso = (ms: number) => new Date(ms).toISOString();

async function firedAt(t: TestHub, rule: string): Promise<string[]> {
  return (await tracesOf(t, rule)).map((trace) => iso(trace.trigger.ts));
}

describe('schedules across the clock changes (Europe/Berlin)', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const h of hubs) await h.hub.stop();
  });

  /** A hub from `start` with a 02:30 job as cron and as `at:`, and a cron job every hour at :30. */
  async function nightRules(start: number): Promise<{ t: TestHub; clock: VirtualClock }> {
    const clock = new VirtualClock(start);
    const t = await startTestHub({ clock });
    hubs.push(t);
    await postRule(t, { id: 'cron-night', triggers: [{ trigger: 'cron', pattern: '30 2 * * *' }], actions: notify });
    await postRule(t, { id: 'at-night', triggers: [{ trigger: 'time', at: '02:30' }], actions: notify });
    await postRule(t, { id: 'cron-hourly', triggers: [{ trigger: 'cron', pattern: '30 * * * *' }], actions: notify });
    return { t, clock };
  }

  it('spring forward: a 02:30 cron job runs at 03:30 that night, as an `at: "02:30"` does, and not a day is skipped', async () => {
    const { t, clock } = await nightRules(Date.UTC(2026, 2, 28, 22, 0)); // Saturday 23:00 CET
    await advance(clock, 4 * HOUR, HOUR); // to 04:00 CEST
    const nights = ['2026-03-29T01:30:00.000Z']; // 03:30 CEST: 02:30 does not exist that night
    assert.deepEqual(await firedAt(t, 'at-night'), nights);
    assert.deepEqual(await firedAt(t, 'cron-night'), nights, 'cron and at: agree');
    // Every hour goes on once per real hour across the jump: 01:30 CET, then 03:30 CEST.
    const hourly = await firedAt(t, 'cron-hourly');
    assert.deepEqual(hourly, [
      '2026-03-28T22:30:00.000Z',
      '2026-03-28T23:30:00.000Z',
      '2026-03-29T00:30:00.000Z',
      '2026-03-29T01:30:00.000Z',
    ]);
    assert.equal(new Set(hourly).size, hourly.length, 'never twice at one instant');
  });

  it('fall back: a 02:30 job runs once that night (cron and at:), an hourly one in both passes of the repeated hour', async () => {
    const { t, clock } = await nightRules(Date.UTC(2026, 9, 24, 21, 0)); // Saturday 23:00 CEST
    await advance(clock, 6 * HOUR, HOUR); // to 04:00 CET
    const nights = ['2026-10-25T00:30:00.000Z']; // 02:30 CEST, the first pass only
    assert.deepEqual(await firedAt(t, 'at-night'), nights);
    assert.deepEqual(await firedAt(t, 'cron-night'), nights, 'cron and at: agree');
    const hourly = await firedAt(t, 'cron-hourly');
    const around = hourly.filter((at) => at >= '2026-10-24T23:00' && at < '2026-10-25T03:00');
    // 01:30 CEST, 02:30 CEST, 02:30 CET, 03:30 CET: "every hour at :30" is every real hour.
    assert.deepEqual(around, [
      '2026-10-24T23:30:00.000Z',
      '2026-10-25T00:30:00.000Z',
      '2026-10-25T01:30:00.000Z',
      '2026-10-25T02:30:00.000Z',
    ]);
    assert.equal(new Set(hourly).size, hourly.length, 'never twice at one instant');
  });
});

describe('cron and at: agree on every day of the year', () => {
  it('property: a daily `M H * * *` comes when `at: "HH:MM"` does, from any moment, the clock-change nights included', () => {
    const year = Date.UTC(2026, 0, 1);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 23 }),
        fc.integer({ min: 0, max: 59 }),
        fc.integer({ min: 0, max: 365 * 24 * 60 - 1 }),
        (hour, minute, offset) => {
          const schedule = parseCron(`${minute} ${hour} * * *`);
          assert.ok(typeof schedule !== 'string');
          const from = year + offset * MIN;
          assert.equal(
            iso(nextCron(schedule, from)),
            iso(nextTimeOfDay(from, hour * 3600 + minute * 60)),
            `${hour}:${minute} after ${iso(from)}`,
          );
        },
      ),
      {
        numRuns: 3000,
        // The nights the clocks change, every wall time of them.
        examples: [
          [2, 30, (Date.UTC(2026, 2, 28, 23, 0) - year) / MIN],
          [2, 0, (Date.UTC(2026, 2, 29, 0, 59) - year) / MIN],
          [2, 30, (Date.UTC(2026, 9, 24, 23, 0) - year) / MIN],
          [2, 30, (Date.UTC(2026, 9, 25, 0, 30) - year) / MIN],
          [2, 59, (Date.UTC(2026, 9, 25, 1, 0) - year) / MIN],
        ],
      },
    );
  });

  it('a wall time of the repeated hour comes once for a named hour, every real hour for `*`', () => {
    const night = parseCron('30 2 * * *');
    const hourly = parseCron('30 * * * *');
    assert.ok(typeof night !== 'string' && typeof hourly !== 'string');
    const first = nextCron(night, Date.UTC(2026, 9, 24, 22, 0));
    assert.equal(iso(first), '2026-10-25T00:30:00.000Z');
    assert.equal(iso(nextCron(night, first)), '2026-10-26T01:30:00.000Z', 'not again in the second pass');
    const seen: string[] = [];
    for (let t = nextCron(hourly, Date.UTC(2026, 9, 24, 22, 0)); seen.length < 5; t = nextCron(hourly, t))
      seen.push(iso(t));
    assert.deepEqual(seen, [
      '2026-10-24T22:30:00.000Z',
      '2026-10-24T23:30:00.000Z',
      '2026-10-25T00:30:00.000Z',
      '2026-10-25T01:30:00.000Z',
      '2026-10-25T02:30:00.000Z',
    ]);
  });
});
