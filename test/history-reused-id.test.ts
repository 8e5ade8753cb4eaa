import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import type { Hub } from '../src/core/hub.ts';
import { vocabularyProperties } from '../src/model/thing.ts';
import { eventually } from './helpers/hub-process.ts';
import { ownerJson } from './helpers/owner-api.ts';
import { dropSchema, hubStores } from './helpers/stores.ts';
import { startTriad } from './helpers/triad-hub.ts';

/**
 * A meter removed and another added under its id: the new one's history, events and chart begin
 * when it was added, on SQLite and PostgreSQL. What the removed one recorded stays stored (the
 * household's events still list it), and a thing re-described without being removed keeps its past.
 */

const CONFIG = 'homeassistant/sensor/reuse/meter/config';
const STATE = 'reuse/meter/power';
const ANNOUNCEMENT = JSON.stringify({
  name: 'Desk meter',
  unique_id: 'reuse_meter',
  state_topic: STATE,
  device_class: 'power',
  unit_of_measurement: 'W',
});

type Point = { ts: string; value: unknown; property?: string };
type History = { points: Point[]; downsampled?: { from: string; count: number } };
type Event = { type: string; thing?: string; ts: string; to?: unknown; property?: string };

for (const backend of hubStores) {
  describe(`a thing added under a removed thing's id (${backend.name})`, async () => {
    const skip = await backend.skip();
    let hub: Hub;
    let device: MqttClient;
    let schema: string | undefined;
    let id = '';
    let property = '';
    let addedAt = 0;

    const history = (query: string) => ownerJson<History>(hub, `/api/things/${id}/history?${query}`);
    const events = (query: string) => ownerJson<Event[]>(hub, `/api/events?${query}`);
    const meter = () => hub.twins.list(hub.householdId).find((twin) => twin.thing.name === 'Desk meter')?.thing;
    const report = async (watts: number) => {
      await device.publishAsync(STATE, String(watts), { qos: 1 });
      await eventually(async () => (await history(`property=${property}`)).points.some((p) => p.value === watts), {
        what: `${watts} W in history`,
      });
    };

    before(async () => {
      if (skip) return;
      const store = backend.choice();
      if (store.kind === 'postgres') schema = store.schema;
      hub = await startTriad({ store, mqtt: { port: 0, host: '127.0.0.1', allowAnonymous: true } });
      device = await mqtt.connectAsync(hub.mqttUrl, { clientId: `reuse-${randomBytes(4).toString('hex')}` });

      // The first meter: announced, two readings, removed.
      await device.publishAsync(CONFIG, ANNOUNCEMENT, { qos: 1, retain: true });
      const first = await eventually(meter, { what: 'the first meter' });
      id = first.id;
      property = Object.keys(first.properties).find((name) => name.endsWith('power')) ?? '';
      assert.ok(property, `a power property on ${JSON.stringify(Object.keys(first.properties))}`);
      await report(100);
      await report(200);
      await device.publishAsync(CONFIG, '', { qos: 1, retain: true });
      await eventually(() => !hub.twins.get(hub.householdId, id), { what: 'the first meter removed' });

      // The next millisecond at least, so the new meter is not added in the old one's last.
      const lastOld = Date.now();
      await eventually(() => Date.now() > lastOld + 1);
      await device.publishAsync(CONFIG, ANNOUNCEMENT, { qos: 1, retain: true });
      const second = await eventually(meter, { what: 'the second meter' });
      assert.equal(second.id, id, 'the new meter has the removed one’s id');
      addedAt = Date.parse(second.createdAt);
      await report(7);
    });

    after(async () => {
      await device?.endAsync();
      await hub?.stop();
      if (schema) await dropSchema(schema);
    });

    it('lists only the new thing’s values, with or without a property, and from before it was added', {
      skip,
    }, async () => {
      for (const query of [`property=${property}`, '', `property=${property}&from=2000-01-01T00:00:00Z`]) {
        const answer = await history(query);
        assert.deepEqual(
          answer.points.map((p) => p.value),
          [7],
          `history?${query}: ${JSON.stringify(answer.points)}`,
        );
      }
      // A range that ends before the thing was added holds none of its values.
      const before = new Date(addedAt - 1).toISOString();
      assert.deepEqual((await history(`property=${property}&to=${before}`)).points, []);
    });

    it('charts only the new thing’s values, its range opening when it was added', { skip }, async () => {
      const open = await history(`property=${property}&points=10`);
      assert.equal(open.downsampled?.count, 1, JSON.stringify(open));
      assert.deepEqual(
        open.points.map((p) => p.value),
        [7],
      );
      assert.ok(Date.parse(open.downsampled?.from ?? '') >= addedAt, `chart from ${open.downsampled?.from}`);
      const early = await history(`property=${property}&points=10&from=2000-01-01T00:00:00Z`);
      assert.equal(early.downsampled?.count, 1, JSON.stringify(early));
      const before = new Date(addedAt - 1).toISOString();
      assert.equal((await history(`property=${property}&points=10&to=${before}`)).downsampled?.count, 0);
    });

    it('lists only the new thing’s events; the household’s events keep the removed one’s', { skip }, async () => {
      for (const query of [`thing=${id}`, `thing=${id}&since=2000-01-01T00:00:00Z`]) {
        const listed = await events(query);
        assert.ok(
          listed.every((event) => Date.parse(event.ts) >= addedAt),
          `events?${query}: ${JSON.stringify(listed)}`,
        );
        assert.deepEqual(
          listed.filter((event) => event.type === 'state').map((event) => event.to),
          [7],
        );
        assert.ok(
          !listed.some((event) => event.type === 'thing.removed'),
          'the old meter’s removal is not the new one’s',
        );
      }
      const household = await events('type=state,thing.removed');
      const old = household.filter((event) => event.thing === id && Date.parse(event.ts) < addedAt);
      assert.deepEqual(
        old.filter((event) => event.type === 'state').map((event) => event.to),
        [100, 200],
        'stored rows are kept',
      );
      assert.ok(old.some((event) => event.type === 'thing.removed'));
    });

    it('keeps a value its device stamped before the thing was added, as of the adding', { skip }, async () => {
      // A phone's last fix or a charge point's queue, sent when the thing is new: its own, not an
      // earlier thing's, so it is in its history, recorded when the thing was added.
      const thing = await hub.core.upsertThing({
        id: 'reuse-early-meter',
        householdId: hub.householdId,
        kind: 'device',
        name: 'Early meter',
        adapter: 'test',
        properties: vocabularyProperties(['sensor.power']),
        actions: {},
      });
      const added = Date.parse(thing.createdAt);
      hub.core.ingest([
        {
          householdId: hub.householdId,
          thing: thing.id,
          property: 'sensor.power',
          value: 42,
          ts: added - 3_600_000,
          source: 'test',
        },
      ]);
      const answer = await ownerJson<History>(hub, `/api/things/${thing.id}/history?property=sensor.power`);
      assert.deepEqual(
        answer.points.map((p) => [Date.parse(p.ts), p.value]),
        [[added, 42]],
      );
      const listed = await events(`thing=${thing.id}&type=state`);
      assert.deepEqual(
        listed.map((event) => event.to),
        [42],
      );
    });

    it('keeps its history when re-described without being removed', { skip }, async () => {
      const renamed = JSON.stringify({ ...JSON.parse(ANNOUNCEMENT), name: 'Office meter' });
      await device.publishAsync(CONFIG, renamed, { qos: 1, retain: true });
      const thing = await eventually(
        () => {
          const current = hub.twins.get(hub.householdId, id)?.thing;
          return current?.name === 'Office meter' && current;
        },
        { what: 'the meter renamed' },
      );
      assert.equal(Date.parse(thing.createdAt), addedAt, 'createdAt kept');
      await report(8);
      assert.deepEqual(
        (await history(`property=${property}`)).points.map((p) => p.value),
        [7, 8],
      );
    });
  });
}
