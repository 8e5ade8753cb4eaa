import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { offsetPoint } from '../src/people/geo.ts';
import { tempDir } from './helpers/hub-process.ts';
import { ownerFetch } from './helpers/owner-api.ts';
import { peopleHub } from './helpers/people-hub.ts';

/**
 * A person taken out of the household takes where they went with them: their own history and
 * their phone's, and their presence events, are deleted from the store; the record that they
 * were removed stays, and everyone else's history is as it was.
 */

const HOME = { latitude: 52.3731, longitude: 4.8922 };
const FAR = offsetPoint(HOME, 2_000, 90);

describe('people: removing a person forgets their movements', () => {
  let hub: Hub;
  const clock = new VirtualClock(Date.UTC(2026, 2, 2, 7, 0));

  const api = async (path: string, method = 'GET', body?: unknown) => {
    const res = await ownerFetch(hub, path, method, body);
    return { status: res.status, body: res.status === 204 ? null : ((await res.json()) as Record<string, unknown>) };
  };
  const addPhone = async (name: string) => {
    const person = (await api('/api/people', 'POST', { name })).body as { id: string };
    const tracker = (await api(`/api/people/${person.id}/trackers`, 'POST', { name: 'phone' })).body as {
      id: string;
      username: string;
      password: string;
    };
    return { person: person.id, tracker: tracker.id, username: tracker.username, password: tracker.password };
  };
  const report = async (phone: Awaited<ReturnType<typeof addPhone>>, point: typeof HOME) => {
    await clock.advance(60_000);
    const res = await fetch(`${hub.httpUrl}/api/owntracks`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${phone.username}:${phone.password}`).toString('base64')}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({
        _type: 'location',
        lat: point.latitude,
        lon: point.longitude,
        acc: 10,
        tst: Math.floor(clock.now() / 1000),
      }),
    });
    assert.equal(res.status, 200, await res.text());
  };
  /** What the store holds of one thing: its history points and its events, by type. */
  const recorded = async (thing: string) => {
    await hub.history.flush();
    const points = await hub.store.queryHistory({ householdId: hub.householdId, thing, limit: 1000 });
    const events = await hub.store.listEvents({ householdId: hub.householdId, thing, limit: 1000 });
    return { points: points.length, events: events.map((e) => e.type) };
  };

  before(async () => {
    hub = peopleHub({ dataDir: await tempDir('triad-people-forget-'), clock });
    await hub.start();
    assert.equal((await api('/api/household', 'PUT', { ...HOME, homeRadius: 100 })).status, 200);
  });
  after(async () => {
    await hub?.stop();
  });

  it("deletes the person's and their phone's history and events, and no one else's", async () => {
    const alex = await addPhone('Alex');
    const sam = await addPhone('Sam');
    for (const point of [HOME, FAR, HOME]) {
      await report(alex, point);
      await report(sam, point);
    }
    const before = await recorded(alex.person);
    assert.ok(before.points > 0 && (await recorded(alex.tracker)).points > 0, 'their movements were recorded');
    const samBefore = [await recorded(sam.person), await recorded(sam.tracker)];

    assert.equal((await api(`/api/people/${alex.person}`, 'DELETE')).status, 204);

    assert.deepEqual(await recorded(alex.person), { points: 0, events: ['thing.removed'] });
    assert.deepEqual(await recorded(alex.tracker), { points: 0, events: ['thing.removed'] });
    assert.deepEqual([await recorded(sam.person), await recorded(sam.tracker)], samBefore);
    // And a new Alex starts with nothing of the last one's.
    const again = await addPhone('Alex');
    assert.deepEqual(await recorded(again.person), { points: 0, events: ['thing.added'] });
  });
});
