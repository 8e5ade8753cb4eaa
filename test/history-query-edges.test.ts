import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { StateChanged } from '../src/core/events.ts';
import type { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { vocabularyProperties } from '../src/model/thing.ts';
import { createTriad } from '../src/triad.ts';
import { tempDir } from './helpers/hub-process.ts';
import { dropSchema, hubStores } from './helpers/stores.ts';

/**
 * `GET /api/things/{id}/history` at its edges, on a demo hub over each store: an empty `property`
 * is a mistake said as one (not every property, not "no points"), a downsampled range whose one
 * given end lies beyond everything recorded is empty with a range that is not reversed and a real
 * bucket width, and `limit` takes decimal digits only, as every count and port does.
 */

// A thermometer of the test's own beside the demo, so its range holds the test's values alone.
const THING = 'edge-thermometer';
const PROPERTY = 'sensor.temperature';
// A whole minute after the thermometer was added (its history begins there), set in before().
let FIRST = 0;
/** A time a year after the recorded values, as ISO. */
const afterAll = () => new Date(FIRST + 365 * 86_400_000).toISOString();

type Answer = { status: number; body: Record<string, unknown> };
type Downsampled = { from: string; to: string; bucketMs: number; count: number; last: unknown };

for (const backend of hubStores) {
  describe(`history query edges (${backend.name})`, async () => {
    const skip = await backend.skip();
    let hub: Hub;
    let schema: string | undefined;
    const get = async (query: string): Promise<Answer> => {
      const res = await fetch(`${hub.httpUrl}/api/things/${THING}/history?${query}`, {
        headers: { authorization: `Bearer ${hub.ownerToken}` },
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const message = (answer: Answer) => (answer.body.error as { message: string } | undefined)?.message ?? '';

    before(async () => {
      if (skip) return;
      const store = backend.choice();
      if (store.kind === 'postgres') schema = store.schema;
      hub = createTriad({
        dataDir: await tempDir(),
        http: { port: 0, host: '127.0.0.1' },
        mqtt: { port: 0, host: '127.0.0.1' },
        demo: true,
        store,
        log: createLogger({ level: 'silent' }),
      });
      await hub.start();
      await hub.core.upsertThing({
        id: THING,
        householdId: hub.householdId,
        kind: 'device',
        name: 'Edge thermometer',
        adapter: 'test',
        properties: vocabularyProperties(['sensor.temperature']),
        actions: {},
      });
      FIRST = (Math.floor(Date.now() / 60_000) + 1) * 60_000;
      const changes: StateChanged[] = Array.from({ length: 20 }, (_, i) => ({
        type: 'state',
        id: `evt_edge_${String(i).padStart(3, '0')}`,
        householdId: hub.householdId,
        ts: FIRST + i * 60_000,
        cause: null,
        thing: THING,
        property: PROPERTY,
        from: null,
        to: 20 + i / 10,
        source: 'test',
      }));
      await hub.store.appendHistory(changes);
    });

    after(async () => {
      await hub?.stop();
      if (schema) await dropSchema(schema);
    });

    it('refuses an empty property with a 400 naming it, with or without points', { skip }, async () => {
      for (const query of ['property=', 'property=&points=3', `property=&from=${new Date(FIRST).toISOString()}`]) {
        const answer = await get(query);
        assert.equal(answer.status, 400, `${query}: ${JSON.stringify(answer.body)}`);
        assert.equal((answer.body.error as { code: string }).code, 'bad_request');
        assert.match(message(answer), /^property must not be empty/, query);
      }
      // Left out, it is still every property; an unknown one is still not found.
      assert.equal((await get('limit=5')).status, 200);
      assert.equal((await get('property=sensor.nope')).status, 404);
    });

    it('answers a downsampled range beyond what was recorded with nothing, the range not reversed', {
      skip,
    }, async () => {
      const beyond = [
        // From a time after the last value (the store would close the range at that value).
        { query: `from=${afterAll()}`, at: afterAll() },
        // To a time before the first.
        { query: 'to=2000-01-01T00:00:00Z', at: '2000-01-01T00:00:00.000Z' },
      ];
      for (const { query, at } of beyond) {
        const answer = await get(`property=${PROPERTY}&points=10&${query}`);
        assert.equal(answer.status, 200, `${query}: ${JSON.stringify(answer.body)}`);
        assert.deepEqual(answer.body.points, [], query);
        const downsampled = answer.body.downsampled as Downsampled;
        assert.ok(
          Date.parse(downsampled.from) <= Date.parse(downsampled.to),
          `${query}: ${JSON.stringify(downsampled)}`,
        );
        assert.equal(downsampled.from, at, query);
        assert.ok(downsampled.bucketMs > 0, `${query}: a real bucket width, got ${downsampled.bucketMs}`);
        assert.equal(downsampled.count, 0);
        assert.equal(downsampled.last, null);
      }
      // An explicit reversed range is still a mistake.
      const reversed = await get(`property=${PROPERTY}&points=10&from=2030-01-01T00:00:00Z&to=2029-01-01T00:00:00Z`);
      assert.equal(reversed.status, 400);
      assert.match(message(reversed), /from must not be after to/);
      // An open end that lands inside the recorded values is closed there, as before.
      const open = await get(`property=${PROPERTY}&points=10&to=${new Date(FIRST + 5 * 60_000).toISOString()}`);
      assert.equal(open.status, 200);
      assert.equal((open.body.downsampled as Downsampled).from, new Date(FIRST).toISOString());
      assert.equal((open.body.downsampled as Downsampled).count, 6);
    });

    it('takes limit in decimal digits only', { skip }, async () => {
      for (const bad of ['1e3', '0x10', '1.0', '+5', ' 5', '5 ']) {
        const answer = await get(`property=${PROPERTY}&limit=${encodeURIComponent(bad)}`);
        assert.equal(answer.status, 400, `limit=${bad}: ${JSON.stringify(answer.body)}`);
        assert.match(message(answer), /^query parameter limit must be integer, in decimal digits/, bad);
      }
      const range = await get(`property=${PROPERTY}&limit=0`);
      assert.equal(range.status, 400, 'the schema still checks the range');
      const good = await get(`property=${PROPERTY}&limit=3&to=${afterAll()}`);
      assert.equal(good.status, 200);
      assert.equal((good.body.points as unknown[]).length, 3);
    });

    it("reads every other route's integer query parameters the same way", { skip }, async () => {
      for (const path of ['/api/events?limit=1e3', `/api/automations/x/traces?limit=0x10`, '/api/audit?limit=1.0']) {
        const res = await fetch(`${hub.httpUrl}${path}`, { headers: { authorization: `Bearer ${hub.ownerToken}` } });
        const body = (await res.json()) as Record<string, unknown>;
        assert.equal(res.status, 400, `${path}: ${JSON.stringify(body)}`);
        assert.match(message({ status: res.status, body }), /must be integer, in decimal digits/, path);
      }
      const events = await fetch(`${hub.httpUrl}/api/events?limit=5`, {
        headers: { authorization: `Bearer ${hub.ownerToken}` },
      });
      assert.equal(events.status, 200);
    });
  });
}
