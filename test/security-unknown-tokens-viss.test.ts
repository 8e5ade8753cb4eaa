import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { CarSimulator } from '../src/sim/car/index.ts';
import { VehicleService } from '../src/vehicles/index.ts';
import { eventuallyPasses, tempDir } from './helpers/hub-process.ts';
import { VissTestClient } from './helpers/viss-client.ts';

type Json = Record<string, unknown>;

/**
 * The hub's VISS endpoint (`/viss/{id}`) takes a token in each request's `authorization` field
 * and on the upgrade: made-up tokens there are held up per address as on the HTTP API (the same
 * limiter, so the two count together), answered with VISS's own 429 `too_many_requests`, and
 * refused without a lookup in the store; a stored token that works is never held up. A real
 * in-process hub on SQLite following the simulated car, real WebSocket and HTTP clients; time is
 * virtual and stands still, so the address stays held up while the test runs.
 */

const START = Date.parse('2026-01-05T07:50:00Z');
const BURST = 5;

describe('security: made-up tokens on the VISS endpoint', () => {
  const clock = new VirtualClock(START);
  let sim: CarSimulator;
  let hub: Hub;
  let vissUrl: string;
  let lookups = 0;

  const made = () => `triad_${randomBytes(32).toString('base64url')}`;
  /** The error in an answer, its number read as one (VISSv3 spells it as a string). */
  const errorOf = (answer: Json) => {
    const error = answer.error as { number: number | string; reason: string; description: string };
    return { ...error, number: Number(error.number) };
  };
  const http = (token: string) => fetch(`${hub.httpUrl}/api/things`, { headers: { authorization: `Bearer ${token}` } });

  before(async () => {
    sim = new CarSimulator({ clock, vissPort: 0 });
    await sim.start();
    hub = new Hub({
      dataDir: await tempDir('triad-viss-unknown-'),
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1' },
      clock,
      log: createLogger({ level: (process.env.TEST_LOG ?? 'silent') as 'silent' }),
      rateLimits: { unknownTokens: { burst: BURST, perSecond: 0.5 } },
    }).use(new VehicleService());
    await hub.start();
    const res = await fetch(`${hub.httpUrl}/api/vehicles`, {
      method: 'POST',
      headers: { authorization: `Bearer ${hub.ownerToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Family car', viss: sim.url }),
    });
    assert.equal(res.status, 201, await res.text());
    vissUrl = `${hub.httpUrl.replace('http', 'ws')}/viss/family-car`;
    await eventuallyPasses(async () => {
      const car = await fetch(`${hub.httpUrl}/api/vehicles/family-car`, {
        headers: { authorization: `Bearer ${hub.ownerToken}` },
      });
      const body = (await car.json()) as Json;
      assert.equal(typeof (body.state as Json)['battery.level'], 'number');
    });
    // Counts the store's token lookups; each still runs the real query.
    const find = hub.store.findTokenByHash.bind(hub.store);
    hub.store.findTokenByHash = (hash) => {
      lookups++;
      return find(hash);
    };
  });

  after(async () => {
    await hub?.stop();
    await sim?.stop();
  });

  it('answers 429 too_many_requests once an address has tried too many, without a lookup', async () => {
    const client = await VissTestClient.open(vissUrl);
    try {
      const numbers: number[] = [];
      for (let i = 0; i < 50; i++) {
        const answer = await client.ask({ action: 'get', path: 'Vehicle.Speed', authorization: made() });
        const error = errorOf(answer);
        numbers.push(error.number);
        if (error.number === 429) {
          assert.equal(error.reason, 'too_many_requests');
          assert.match(error.description, /unknown tokens/);
          break;
        }
        assert.equal(error.reason, 'invalid_token');
      }
      assert.deepEqual(numbers, [...Array(BURST).fill(401), 429], 'held up after the burst, as on the API');

      // Held up: the next made-up tokens are refused without a lookup in the store.
      const before = lookups;
      for (let i = 0; i < 10; i++) {
        const answer = await client.ask({ action: 'get', path: 'Vehicle.Speed', authorization: made() });
        assert.equal(errorOf(answer).number, 429);
      }
      assert.equal(lookups, before, 'a refused made-up token is not looked up');

      // The owner's token, from the same held-up address, still reads the car.
      const speed = await client.ask({ action: 'get', path: 'Vehicle.Speed', authorization: hub.ownerToken });
      assert.equal(speed.error, undefined, JSON.stringify(speed));
      assert.ok(speed.data, JSON.stringify(speed));
    } finally {
      client.close();
    }

    // One limiter for the address: the HTTP API holds it up too.
    const res = await http(made());
    assert.equal(res.status, 429, await res.text());
    assert.match(String(res.headers.get('retry-after')), /^[1-9][0-9]*$/);
  });

  it('holds up a made-up token on the upgrade, and lets a stored one through', async () => {
    const before = lookups;
    const held = await VissTestClient.open(vissUrl, { token: made() });
    try {
      const answer = await held.ask({ action: 'get', path: 'Vehicle.Speed' });
      assert.equal(errorOf(answer).number, 429, JSON.stringify(answer));
      assert.equal(errorOf(answer).reason, 'too_many_requests');
    } finally {
      held.close();
    }
    assert.equal(lookups, before, 'a refused made-up token is not looked up');

    const owner = await VissTestClient.open(vissUrl, { token: hub.ownerToken });
    try {
      const speed = await owner.ask({ action: 'get', path: 'Vehicle.Speed' });
      assert.equal(speed.error, undefined, JSON.stringify(speed));
    } finally {
      owner.close();
    }
  });
});
