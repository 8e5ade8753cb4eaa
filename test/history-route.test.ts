import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { StateChanged } from '../src/core/events.ts';
import type { Hub } from '../src/core/hub.ts';
import { startDemoTriad } from './helpers/demo-hub.ts';
import { eventually } from './helpers/hub-process.ts';

/**
 * `GET /api/things/{id}/history?…&points=N`: a long range downsampled by the store to at most N
 * buckets, on a hub started in this process with the simulated home.
 */
describe('history downsampling over HTTP', () => {
  let hub: Hub;
  const call = (path: string) => fetch(hub.httpUrl + path, { headers: { authorization: `Bearer ${hub.ownerToken}` } });
  const THING = 'living-room-sensor';
  const PROPERTY = 'sensor.temperature';
  // Ahead, so the simulated home's own readings are not in the range: not long ago, before the
  // sensor was added, which is no longer its history.
  const FROM = Date.parse('2100-03-01T00:00:00Z');
  const N = 50_000;
  const STEP = 10_000;
  const TO = FROM + (N - 1) * STEP;
  const value = (i: number) => 20 + Math.sin(i / 700) * 3 + (i === 31_337 ? 40 : 0) - (i === 7 ? 30 : 0);

  before(async () => {
    hub = await startDemoTriad();
    await eventually(async () => (await call(`/api/things/${THING}`)).ok, { what: 'the demo sensor' });
    const changes: StateChanged[] = [];
    for (let i = 0; i < N; i++) {
      changes.push({
        type: 'state',
        id: `evt_ds_${String(i).padStart(6, '0')}`,
        householdId: hub.householdId,
        ts: FROM + i * STEP,
        cause: null,
        thing: THING,
        property: PROPERTY,
        from: null,
        to: value(i),
        source: 'test',
      });
    }
    for (let i = 0; i < N; i += 5000) await hub.store.appendHistory(changes.slice(i, i + 5000));
  });

  after(async () => {
    await hub.stop();
  });

  const range = `from=${new Date(FROM).toISOString()}&to=${new Date(TO).toISOString()}`;

  it('refuses a bad points value with a clear 400 in the error format', async () => {
    for (const bad of ['0', '1', '5001', '99999999', 'abc', '2.5', '-3', '', '1e3']) {
      const res = await call(`/api/things/${THING}/history?property=${PROPERTY}&${range}&points=${bad}`);
      assert.equal(res.status, 400, `points=${bad}`);
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'bad_request');
      assert.match(body.error.message, /^points must be a whole number from 2 to 5000, got /, body.error.message);
    }
    const noProperty = await call(`/api/things/${THING}/history?${range}&points=100`);
    assert.equal(noProperty.status, 400);
    assert.match(
      ((await noProperty.json()) as { error: { message: string } }).error.message,
      /points needs a property/,
    );
    for (const extra of ['limit=5', 'after=1.x']) {
      const res = await call(`/api/things/${THING}/history?property=${PROPERTY}&points=10&${extra}`);
      assert.equal(res.status, 400, extra);
    }
    const missing = await call(`/api/things/${THING}/history?property=nope.nope&points=10`);
    assert.equal(missing.status, 404, 'an unknown property is still not found');
    for (const ok of ['2', '5000']) {
      assert.equal((await call(`/api/things/${THING}/history?property=${PROPERTY}&${range}&points=${ok}`)).status, 200);
    }
  });

  it('answers a long range in at most N points, whose min and max are the true ones', async () => {
    const points = 300;
    const res = await call(`/api/things/${THING}/history?property=${PROPERTY}&${range}&points=${points}`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as {
      thing: string;
      property: string;
      points: Array<{ ts: string; value: number; count: number; min: number; max: number; mean: number }>;
      downsampled: { kind: string; count: number; bucketMs: number; from: string; to: string; last: unknown };
    };
    assert.equal(body.thing, THING);
    assert.equal(body.property, PROPERTY);
    assert.equal(body.downsampled.kind, 'number');
    assert.equal(body.downsampled.count, N, 'the range held every recorded value');
    assert.ok(body.points.length <= points && body.points.length >= points - 2, `${body.points.length} points`);
    assert.deepEqual(body.downsampled.last, { ts: new Date(TO).toISOString(), value: value(N - 1) });
    const width = body.downsampled.bucketMs;
    // Each bucket against the values it stands for, computed here from the same formula.
    let counted = 0;
    for (const p of body.points) {
      const start = Date.parse(p.ts);
      const inside: number[] = [];
      for (let i = Math.ceil((start - FROM) / STEP); i < N && FROM + i * STEP < start + width; i++) {
        inside.push(value(i));
      }
      counted += inside.length;
      assert.equal(p.count, inside.length, `count of the bucket at ${p.ts}`);
      assert.equal(p.min, Math.min(...inside));
      assert.equal(p.max, Math.max(...inside));
      const mean = inside.reduce((a, b) => a + b, 0) / inside.length;
      assert.ok(Math.abs(p.mean - mean) < 1e-9, `mean at ${p.ts}: ${p.mean} vs ${mean}`);
      assert.equal(p.value, p.mean, 'value is the mean, for a client that reads only ts and value');
    }
    assert.equal(counted, N);
    assert.equal(Math.max(...body.points.map((p) => p.max)), value(31_337), 'the spike survives');
    assert.equal(Math.min(...body.points.map((p) => p.min)), value(7), 'and the dip');
    assert.equal(Date.parse(body.points[0].ts), FROM, 'the first bucket starts at from');
    assert.ok(Date.parse(body.points.at(-1)?.ts ?? '') + width > TO, 'the last bucket reaches to');
  });

  it('keeps the existing shape without points', async () => {
    const res = await call(`/api/things/${THING}/history?property=${PROPERTY}&${range}&limit=3`);
    const body = (await res.json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), ['next', 'points', 'property', 'thing']);
    const points = body.points as Array<Record<string, unknown>>;
    assert.deepEqual(Object.keys(points[0]).sort(), ['cause', 'id', 'ts', 'value']);
    assert.equal(points[0].value, value(0));
    assert.equal(points.length, 3);
  });

  it('sums up a yes/no property as values and changes', async () => {
    type Body = { points: Array<Record<string, unknown>>; downsampled: { kind: string } };
    // Once the demo light's first value is in its history (it reports, and the history writer
    // commits, in its own time: on a slow machine not necessarily by now).
    const body = await eventually(
      async () => {
        const res = await call(`/api/things/hall-light/history?property=light.on&points=50`);
        assert.equal(res.status, 200);
        const answer = (await res.json()) as Body;
        return answer.points.length > 0 && answer;
      },
      { what: "the demo light's first value in its history", timeoutMs: 15_000 },
    );
    assert.equal(body.downsampled.kind, 'value');
    for (const p of body.points) {
      assert.equal(typeof p.first, 'boolean');
      assert.equal(typeof p.changes, 'number');
      assert.equal(p.value, p.first);
    }
  });
});
