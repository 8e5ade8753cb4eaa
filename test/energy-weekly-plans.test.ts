import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { VirtualClock } from '../src/core/clock.ts';
import { nextOccurrence, parseBy, timeOfDayOf } from '../src/energy/planner/plan-book.ts';
import { startEnergyHub } from './helpers/energy-hub.ts';

/**
 * A weekly charge plan comes back at the same time on the household's clocks, on the household's
 * own weekdays: around local midnight (another UTC day) and across both changes of the clocks.
 * In 2026 Berlin's clocks go forward on Sunday 29 March (02:00 → 03:00) and back on Sunday
 * 25 October (03:00 → 02:00).
 */

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const BERLIN = 'Europe/Berlin';
const WEEKDAYS = [1, 2, 3, 4, 5];
const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();

/** How the household reads a moment: `2026-03-30 07:00:00 Mon`, from Intl's own formatting. */
function reads(ms: number, timeZone: string): { date: string; time: string; weekday: number } {
  const [date, time] = new Date(ms).toLocaleString('sv-SE', { timeZone, hourCycle: 'h23' }).split(' ');
  const name = new Date(ms).toLocaleDateString('en-GB', { timeZone, weekday: 'short' });
  return { date, time, weekday: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'].indexOf(name) + 1 };
}

describe('the next deadline of a weekly plan', () => {
  it('in Berlin, "by 00:30 on Mondays" stays Monday 00:30 though that is Sunday in UTC', () => {
    const by = at('2026-06-14T22:30:00Z'); // Monday 15 June, 00:30 CEST
    const next = nextOccurrence(by, [1], by + MINUTE, BERLIN);
    assert.equal(iso(next), '2026-06-21T22:30:00.000Z');
    assert.deepEqual(reads(next, BERLIN), { date: '2026-06-22', time: '00:30:00', weekday: 1 });
    // Sundays at 23:30 are Monday in UTC: the household's Sunday it is.
    const sunday = at('2026-06-14T21:30:00Z');
    assert.equal(iso(nextOccurrence(sunday, [7], sunday, BERLIN)), '2026-06-21T21:30:00.000Z');
  });

  it('keeps "07:00 every weekday" at 07:00 when the clocks go forward on 29 March', () => {
    const friday = at('2026-03-27T06:00:00Z'); // 07:00 CET
    const monday = nextOccurrence(friday, WEEKDAYS, friday + MINUTE, BERLIN);
    assert.equal(iso(monday), '2026-03-30T05:00:00.000Z'); // 07:00 CEST
    assert.equal(reads(monday, BERLIN).time, '07:00:00');
  });

  it('keeps "07:00 every weekday" at 07:00 when the clocks go back on 25 October', () => {
    const friday = at('2026-10-23T05:00:00Z'); // 07:00 CEST
    const monday = nextOccurrence(friday, WEEKDAYS, friday + MINUTE, BERLIN);
    assert.equal(iso(monday), '2026-10-26T06:00:00.000Z'); // 07:00 CET
    assert.equal(reads(monday, BERLIN).time, '07:00:00');
  });

  it('takes 02:30, skipped on 29 March, as the moment the clocks jump, and 02:30 again the day after', () => {
    const everyDay = [1, 2, 3, 4, 5, 6, 7];
    const saturday = at('2026-03-28T01:30:00Z'); // 02:30 CET
    const timeOfDay = timeOfDayOf('02:30', saturday, BERLIN);
    const sunday = nextOccurrence(saturday, everyDay, saturday, BERLIN, timeOfDay);
    assert.equal(iso(sunday), '2026-03-29T01:00:00.000Z'); // 02:00 CET is 03:00 CEST
    const monday = nextOccurrence(sunday, everyDay, sunday, BERLIN, timeOfDay);
    assert.equal(iso(monday), '2026-03-30T00:30:00.000Z'); // 02:30 CEST, not the 03:00 of the day before
    // A time of day asked for that night means the same moment.
    assert.equal(iso(parseBy('02:30', at('2026-03-28T12:00:00Z'), BERLIN)), '2026-03-29T01:00:00.000Z');
  });

  it('takes 02:30, read twice on 25 October, as the first time the clocks read it', () => {
    const everyDay = [1, 2, 3, 4, 5, 6, 7];
    const saturday = at('2026-10-24T00:30:00Z'); // 02:30 CEST
    const sunday = nextOccurrence(saturday, everyDay, saturday, BERLIN);
    assert.equal(iso(sunday), '2026-10-25T00:30:00.000Z'); // 02:30 CEST, an hour before 02:30 CET
    const monday = nextOccurrence(sunday, everyDay, sunday, BERLIN);
    assert.equal(iso(monday), '2026-10-26T01:30:00.000Z'); // 02:30 CET
    assert.equal(iso(parseBy('02:30', at('2026-10-24T12:00:00Z'), BERLIN)), '2026-10-25T00:30:00.000Z');
  });

  it('in UTC, steps to the next allowed day, and from today after a hub stopped for months', () => {
    const monday = at('2026-06-15T07:00:00Z');
    assert.equal(iso(nextOccurrence(monday, [1, 3], monday)), '2026-06-17T07:00:00.000Z');
    assert.equal(iso(nextOccurrence(monday, [1, 3], at('2026-06-17T07:00:00Z'))), '2026-06-22T07:00:00.000Z');
    const months = at('2026-11-20T12:00:00Z'); // a Friday
    assert.equal(iso(nextOccurrence(monday, [1, 3], months)), '2026-11-23T07:00:00.000Z');
    // A deadline still to come on an allowed day is the next one.
    assert.equal(nextOccurrence(monday, [1], monday - HOUR), monday);
  });

  it('refuses a week with no weekday rather than guessing one', () => {
    assert.throws(() => nextOccurrence(0, [], DAY), /ISO weekdays, 1 \(Monday\) to 7 \(Sunday\), not \[\]/);
    assert.throws(() => nextOccurrence(0, [0, 8], DAY, BERLIN), RangeError);
  });

  it('is after now, on an allowed local weekday, at the same local time when the clocks have it (property)', () => {
    const zones = [BERLIN, 'UTC', 'America/New_York', 'Australia/Lord_Howe', 'America/Santiago', 'Asia/Kolkata'];
    const YEAR_2025 = at('2025-01-01T00:00:00Z');
    fc.assert(
      fc.property(
        fc.constantFrom(...zones),
        fc.integer({ min: 0, max: 3 * 365 * 24 * 60 }).map((minutes) => YEAR_2025 + minutes * MINUTE),
        fc.uniqueArray(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 7 }),
        fc.integer({ min: 0, max: 60 * 24 * 60 }).map((minutes) => minutes * MINUTE),
        (timeZone, by, days, late) => {
          const now = by + late;
          const next = nextOccurrence(by, days, now, timeZone);
          assert.ok(next > now && next >= by, `${iso(next)} after ${iso(now)}`);
          assert.ok(next - now <= 7 * DAY + 2 * HOUR, `${iso(next)} the first after ${iso(now)}`);
          const wanted = reads(by, timeZone).time;
          const got = reads(next, timeZone);
          assert.ok(days.includes(got.weekday), `${got.date} is day ${got.weekday}, not one of ${days}`);
          // The days between now and then are not allowed, or the deadline would have come sooner.
          for (let day = reads(now, timeZone).date; ; ) {
            const following = new Date(Date.parse(`${day}T12:00:00Z`) + DAY).toISOString().slice(0, 10);
            if (following >= got.date) break;
            const weekday = ((new Date(`${following}T12:00:00Z`).getUTCDay() + 6) % 7) + 1;
            assert.ok(!days.includes(weekday), `${following} is allowed, before ${got.date}`);
            day = following;
          }
          if (got.time === wanted) {
            // Where the clocks read it twice, the first time.
            for (let back = 1; back <= 4; back++)
              assert.notEqual(reads(next - back * 30 * MINUTE, timeZone).time, wanted, 'the first reading');
          } else {
            // The clocks never read it that day: the moment they jump past it.
            assert.ok(reads(next - 1000, timeZone).time < wanted && got.time > wanted, `${got.time} for ${wanted}`);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('a weekly plan in the running service', () => {
  // Monday 19 October 2026 has just begun in Berlin (Sunday in UTC); the clocks go back on the 25th.
  const clock = new VirtualClock(at('2026-10-18T22:00:00Z'));
  let started: Awaited<ReturnType<typeof startEnergyHub>> | undefined;
  const send = (method: string, path: string, body?: unknown) => {
    if (!started) throw new Error('the hub has not started');
    return started.send(method, path, body);
  };

  before(async () => {
    started = await startEnergyHub({ clock, service: { tickMs: 10 * MINUTE } });
  });

  after(async () => {
    await started?.hub.stop();
  });

  it('rolls "by 00:30 on Mondays" on to the next Monday 00:30 in Berlin, after the clocks go back', async () => {
    const charger = await send('POST', '/api/chargers', { chargePointId: 'garage', name: 'Garage wallbox' });
    assert.equal(charger.status, 201, JSON.stringify(charger.body));
    const id = charger.body.id as string;
    const tariff = await send('PUT', '/api/energy/tariff', { currency: 'EUR', fixed: 0.3, timeZone: BERLIN });
    assert.equal(tariff.status, 200, JSON.stringify(tariff.body));
    const plan = await send('POST', '/api/energy/plans', {
      vehicle: 'car',
      charger: id,
      targetSoc: 50,
      by: '00:30',
      repeat: [1],
    });
    assert.equal(plan.status, 201, JSON.stringify(plan.body));
    assert.equal(plan.body.by, '2026-10-18T22:30:00.000Z'); // Monday 19 October, 00:30 CEST

    await clock.advanceTo(at('2026-10-18T22:31:00Z'));
    const rolled = await send('GET', `/api/energy/plans/${id}`);
    assert.equal(rolled.status, 200, JSON.stringify(rolled.body));
    // Monday 26 October, 00:30 CET: not Tuesday 00:30 (Monday in UTC), nor 23:30 on Sunday.
    assert.equal(rolled.body.by, '2026-10-25T23:30:00.000Z');
    assert.deepEqual(rolled.body.repeat, [1]);
  });
});

describe('the first deadline of a weekly plan', () => {
  // Saturday 31 October 2026, 11:00 in Berlin: a hub of its own, since moving a virtual clock on by
  // days runs every timer of the hub (the history writer's every 50 ms) on the way.
  const clock = new VirtualClock(at('2026-10-31T10:00:00Z'));
  let started: Awaited<ReturnType<typeof startEnergyHub>> | undefined;

  before(async () => {
    started = await startEnergyHub({ clock, service: { tickMs: 10 * MINUTE } });
  });

  after(async () => {
    await started?.hub.stop();
  });

  it('puts "by 07:30 on weekdays", asked for on a Saturday, on Monday', async () => {
    const send = (started as NonNullable<typeof started>).send;
    const charger = await send('POST', '/api/chargers', { chargePointId: 'carport', name: 'Carport wallbox' });
    assert.equal(charger.status, 201, JSON.stringify(charger.body));
    const tariff = await send('PUT', '/api/energy/tariff', { currency: 'EUR', fixed: 0.3, timeZone: BERLIN });
    assert.equal(tariff.status, 200, JSON.stringify(tariff.body));
    const plan = await send('POST', '/api/energy/plans', {
      vehicle: 'car',
      charger: charger.body.id,
      targetSoc: 50,
      by: '07:30',
      repeat: [1, 2, 3, 4, 5],
    });
    assert.equal(plan.status, 201, JSON.stringify(plan.body));
    // Monday 2 November, 07:30 CET: not Sunday's 07:30, a day the plan leaves out.
    assert.equal(plan.body.by, '2026-11-02T06:30:00.000Z');
  });
});
