import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { distanceMetres } from '../src/people/geo.ts';
import { DEMO_WORK } from '../src/sim/car/route.ts';
import { DEMO_HOME, provisionDemoPhones, SimulatedPhones } from '../src/sim/people.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';
import { peopleHub } from './helpers/people-hub.ts';

/**
 * The demo's phones against a real hub: set up through the API, reporting real OwnTracks JSON
 * (one over MQTT, one over HTTP) on a virtual day, so the household empties and fills as people
 * commute.
 */
describe('simulated phones', () => {
  const clock = new VirtualClock(Date.UTC(2026, 2, 2, 6, 0));
  let hub: Hub;
  let phones: SimulatedPhones;
  const value = (thing: string, property: string) => hub.core.getValue(hub.householdId, thing, property);

  /** Moves the day on a few minutes at a time, letting every phone's report land. */
  async function until(hourUtc: number): Promise<void> {
    const target = Date.UTC(2026, 2, 2, 0, 0) + hourUtc * 3_600_000;
    while (clock.now() < target) {
      await clock.advance(Math.min(300_000, target - clock.now()));
      await phones.idle();
    }
  }

  before(async () => {
    hub = peopleHub({ dataDir: await tempDir('triad-phones-'), clock });
    await hub.start();
    const demo = await provisionDemoPhones({ hubUrl: hub.httpUrl, token: hub.ownerToken });
    assert.deepEqual(
      demo.map((p) => p.transport),
      ['mqtt', 'http'],
    );
    phones = new SimulatedPhones({
      clock,
      hubUrl: hub.httpUrl,
      brokerUrl: hub.mqttUrl,
      phones: demo,
      reportEveryMs: 60_000,
    });
    await phones.start();
  });

  after(async () => {
    await phones?.stop();
    await hub?.stop();
  });

  it('starts the day with everyone home', async () => {
    await eventually(() => value('alex', 'presence.home') === true && value('sam', 'presence.home') === true, {
      what: 'both demo people home',
    });
    assert.equal(value('household', 'presence.anyone_home'), true);
  });

  it('empties the household during the working day and fills it again in the evening', async () => {
    await until(10);
    await eventually(() => value('household', 'presence.everyone_away') === true, { what: 'everyone away at 10:00' });
    const alex = {
      latitude: value('alex', 'location.latitude') as number,
      longitude: value('alex', 'location.longitude') as number,
    };
    assert.ok(distanceMetres(alex, DEMO_HOME) > 5_000, 'Alex is at work, over MQTT');
    // Where the demo commutes to is a zone of the household: presence says where, not just "away".
    const zoneName = (person: string) =>
      hub.core.getThing(hub.householdId, String(value(person, 'presence.zone')))?.name;
    await eventually(() => zoneName('alex') === 'Work' && zoneName('sam') === "Sam's work", {
      what: 'Alex and Sam at their work zones',
    });
    assert.equal(value('alex', 'presence.home'), false);
    const samSees = phones.friendsSeen.get([...phones.friendsSeen.keys()][0]) ?? [];
    assert.ok(
      samSees.some((m) => m._type === 'location' && m.topic === 'owntracks/alex/triad'),
      "Sam's phone shows Alex",
    );

    await until(18);
    await eventually(() => value('alex', 'presence.home') === true && value('sam', 'presence.home') === true, {
      what: 'both home at 18:00',
    });
    assert.equal(value('household', 'presence.everyone_away'), false);
  });

  it('adds the workplaces as zones through the zones API, once: set up again, nothing is doubled', async () => {
    const zones = async () => {
      const response = await fetch(new URL('/api/zones', hub.httpUrl), {
        headers: { authorization: `Bearer ${hub.ownerToken}` },
      });
      return (await response.json()) as Array<{ id: string; name: string; latitude: number; longitude: number }>;
    };
    const before = await zones();
    assert.deepEqual(before.map((z) => z.name).sort(), ['Home', "Sam's work", 'Work']);
    const work = before.find((z) => z.name === 'Work')!;
    assert.ok(distanceMetres(work, DEMO_WORK) < 1, 'Work is where the car parks');
    // The demo starting again on the same data (and a household whose user removed a zone) keeps what it has.
    await provisionDemoPhones({ hubUrl: hub.httpUrl, token: hub.ownerToken });
    const sams = before.find((z) => z.name === "Sam's work")!;
    const response = await fetch(new URL(`/api/zones/${sams.id}`, hub.httpUrl), {
      method: 'DELETE',
      headers: { authorization: `Bearer ${hub.ownerToken}` },
    });
    assert.equal(response.status, 204);
    await provisionDemoPhones({ hubUrl: hub.httpUrl, token: hub.ownerToken });
    assert.deepEqual((await zones()).map((z) => z.name).sort(), ['Home', 'Work']);
  });

  it('lets a person travel with something else, such as the car they drive', () => {
    const carried = new SimulatedPhones({
      clock,
      hubUrl: hub.httpUrl,
      brokerUrl: hub.mqttUrl,
      phones: [],
      travelsWith: (person) => (person === 'Alex' ? { latitude: 52.2, longitude: 5.3, speed: 80 } : null),
    });
    const phone = {
      person: 'Alex',
      transport: 'http' as const,
      username: 'u',
      password: 'p',
      home: DEMO_HOME,
      work: DEMO_HOME,
    };
    assert.deepEqual(carried.positionOf(phone), { latitude: 52.2, longitude: 5.3, speed: 80 });
    assert.deepEqual(carried.positionOf({ ...phone, person: 'Sam' }), { ...DEMO_HOME, speed: 0 });
  });
});
