import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { CarSimulator } from '../src/sim/car/index.ts';
import { eventually } from './helpers/hub-process.ts';
import { type ApiAnswer, startVehicleHub } from './helpers/vehicle-hub.ts';
import { VissTestClient } from './helpers/viss-client.ts';

/**
 * Subscriptions whose value filter could never work as asked are refused by the hub's VISS server
 * with the spec's 400 "Missing or invalid filter" (VISSv3 transport, error table: misused filter),
 * in each version's error shape, instead of being granted and never firing (a range on the VIN, a
 * text) or firing on one leaf and sending a whole branch (a change on Vehicle.Cabin). VISS core:
 * a value filter is judged on the first signal named, which must not address several signals.
 */

const START = Date.parse('2026-01-05T07:50:00Z');
const RANGE = { 'boundary-op': 'gt', boundary: '5' };
const CHANGE = (op: string) => ({ 'logic-op': op, diff: '0' });

describe('vehicles: VISS value filters that cannot work are refused', () => {
  const clock = new VirtualClock(START);
  let sim: CarSimulator;
  let hub: Hub;
  let vissUrl: string;

  before(async () => {
    sim = new CarSimulator({ clock, vissPort: 0 });
    await sim.start();
    let api: (path: string) => Promise<ApiAnswer>;
    ({ hub, api } = await startVehicleHub({ clock, viss: sim.url, name: 'Family car' }));
    vissUrl = `${hub.httpUrl.replace('http', 'ws')}/viss/family-car`;
    await eventually(
      async () => ((await api('/api/vehicles/family-car')).body.state as Record<string, unknown>)['vehicle.vin'],
      { what: 'the car read' },
    );
  });

  after(async () => {
    await hub?.stop();
    await sim?.stop();
  });

  /** The cases both versions refuse: [what, the subscribe request's path and filter]. */
  const misused: Array<[string, Record<string, unknown>]> = [
    ['a range on a text signal', { path: 'Vehicle.VehicleIdentification.VIN', kind: 'range', parameter: RANGE }],
    ['a change on a branch', { path: 'Vehicle.Cabin', kind: 'change', parameter: CHANGE('ne') }],
    ['a range on a branch', { path: 'Vehicle.Cabin.Door', kind: 'range', parameter: RANGE }],
    [
      'a change whose first path is a wildcard over several signals',
      { path: 'Vehicle', paths: ['Cabin.Door.*.*.IsLocked', 'Speed'], kind: 'change', parameter: CHANGE('ne') },
    ],
    [
      'a change other than ne on a text signal',
      { path: 'Vehicle.VehicleIdentification.VIN', kind: 'change', parameter: CHANGE('gt') },
    ],
  ];

  /** A subscribe request in a version's filter spelling (`variant` in v3, `type` in v2). */
  const subscribe = (version: 'VISSv3' | 'VISSv2', c: Record<string, unknown>) => {
    const key = version === 'VISSv3' ? 'variant' : 'type';
    const value = { [key]: c.kind, parameter: c.parameter };
    const filter = c.paths ? [{ [key]: 'paths', parameter: c.paths }, value] : value;
    return { action: 'subscribe', path: c.path, filter };
  };

  for (const version of ['VISSv3', 'VISSv2'] as const) {
    it(`refuses each with 400 bad_request, invalid filter (${version})`, async () => {
      const client = await VissTestClient.open(vissUrl, { protocol: version, token: hub.ownerToken });
      try {
        for (const [what, c] of misused) {
          const answer = await client.ask(subscribe(version, c));
          assert.equal(answer.subscriptionId, undefined, `${what}: no subscription granted`);
          const error = answer.error as Record<string, unknown> | undefined;
          assert.ok(error, `${what}: an error, got ${JSON.stringify(answer)}`);
          assert.equal(error.number, version === 'VISSv3' ? '400' : 400, what);
          assert.equal(error.reason, 'bad_request', what);
          const words = String(version === 'VISSv3' ? error.description : error.message);
          assert.match(words, /^Missing or invalid filter: /, what);
        }
        // What does work is still granted: the same filters on one signal each.
        const granted: Array<Record<string, unknown>> = [
          { path: 'Vehicle.Speed', kind: 'range', parameter: RANGE },
          { path: 'Vehicle.VehicleIdentification.VIN', kind: 'change', parameter: CHANGE('ne') },
          {
            path: 'Vehicle',
            paths: ['Cabin.Door.Row1.DriverSide.IsLocked', 'Cabin.Door.*.*.IsLocked'],
            kind: 'change',
            parameter: CHANGE('ne'),
          },
          { path: 'Vehicle.Cabin', kind: 'timebased', parameter: { period: '1000' } },
        ];
        for (const c of granted) {
          const answer = await client.ask(subscribe(version, c));
          assert.equal(answer.error, undefined, `${JSON.stringify(c)}: ${JSON.stringify(answer)}`);
          assert.equal(typeof answer.subscriptionId, 'string');
        }
      } finally {
        client.close();
      }
    });
  }
});
