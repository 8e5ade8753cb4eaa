import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import type { Clock, VirtualClock } from '../../src/core/clock.ts';
import { Hub, type StoreChoice } from '../../src/core/hub.ts';
import { createLogger, type LogLine } from '../../src/core/log.ts';
import { VehicleService, type VehicleServiceOptions } from '../../src/vehicles/index.ts';
import { eventuallyPasses, tempDir } from './hub-process.ts';
import { CAR_SIGNALS, driveCar, type ScriptedCar, startScriptedCar } from './scripted-car.ts';
import type { ApiAnswer } from './vehicle-hub.ts';

/**
 * A hub with the vehicle service that a test can stop and start again on the same data directory,
 * as a restart does: what it stored (the car attached, its history) is there when it comes back.
 * Every warning and error it logs is kept in `warnings`.
 */
export interface RestartableVehicleHub {
  readonly warnings: LogLine[];
  /** The hub running now; throws while it is down. */
  readonly hub: Hub;
  /** Starts the hub (again). */
  start(): Promise<void>;
  /** Stops the hub, if it runs. */
  stop(): Promise<void>;
  /** Calls the running hub with the owner's token. */
  api(path: string, init?: RequestInit): Promise<ApiAnswer>;
  /** Attaches the car at `viss` as a user does, named "Car" (thing id `car`). */
  attach(viss: string): Promise<void>;
}

export function restartableVehicleHub(options: {
  clock: Clock;
  service?: VehicleServiceOptions;
  /** SQLite in the data directory when absent. */
  store?: StoreChoice;
}): RestartableVehicleHub {
  const dataDir = tempDir();
  const warnings: LogLine[] = [];
  let running: Hub | null = null;
  const self: RestartableVehicleHub = {
    warnings,
    get hub() {
      if (!running) throw new Error('the hub is down');
      return running;
    },
    async start() {
      running = new Hub({
        dataDir: await dataDir,
        http: { port: 0, host: '127.0.0.1' },
        mqtt: { port: 0, host: '127.0.0.1' },
        clock: options.clock,
        store: options.store,
        log: createLogger({ level: 'warn', sink: (line) => warnings.push(line) }),
      }).use(new VehicleService(options.service));
      await running.start();
    },
    async stop() {
      await running?.stop();
      running = null;
    },
    async api(path, init = {}) {
      const headers = new Headers(init.headers);
      headers.set('authorization', `Bearer ${self.hub.ownerToken}`);
      if (init.body !== undefined) headers.set('content-type', 'application/json');
      const res = await fetch(self.hub.httpUrl + path, { ...init, headers });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    async attach(viss) {
      const created = await self.api('/api/vehicles', { method: 'POST', body: JSON.stringify({ name: 'Car', viss }) });
      assert.equal(created.status, 201, JSON.stringify(created.body));
    },
  };
  return self;
}

type Row = Record<string, unknown>;

/**
 * A scripted car, parked with `values`, attached to a restartable vehicle hub (`triad`): both are
 * started before the tests of the describe it is called in, once the hub has the car's charge, and
 * stopped after them. `heard` waits until the hub has heard the changes the car just sent; `drive`
 * and `park` go by it.
 */
export function scriptedCarOnRestartableHub(options: {
  clock: VirtualClock;
  values: Record<string, string>;
  /** With how long a car stands still before the trip it was on ends. */
  service: VehicleServiceOptions & { tripStopGraceMs: number };
  heard(changes: Record<string, string>, vehicle: () => Promise<{ connected: boolean; state: Row }>): Promise<unknown>;
}) {
  const { clock, values } = options;
  const triad = restartableVehicleHub({ clock, service: options.service });
  let car: ScriptedCar | undefined;
  const api = async <T>(path: string) => (await triad.api(path)).body as T;
  const vehicle = () => api<{ connected: boolean; state: Row }>('/api/vehicles/car');
  const trips = () => api<Row[]>('/api/vehicles/car/trips');
  /** The car's signals change; the hub has heard them once `heard` says so. */
  const drive = async (changes: Record<string, string>) => {
    driveCar(car as ScriptedCar, values, clock, changes);
    await options.heard(changes, vehicle);
  };

  before(async () => {
    car = await startScriptedCar({ clock, values, subscriptionId: (path) => path, refuseUnknownSubscriptions: false });
    await triad.start();
    await triad.attach(car.url);
    const level = Number(values[CAR_SIGNALS.level]);
    await eventuallyPasses(async () => assert.equal((await vehicle()).state['battery.level'], level));
  });
  after(async () => {
    await triad.stop();
    await car?.close();
  });

  /** The car drives on at 50 km/h for a minute. */
  const driveOn = async () => {
    await drive({ [CAR_SIGNALS.moving]: 'true', [CAR_SIGNALS.speed]: '50' });
    await clock.advance(60_000);
  };

  return {
    triad,
    /** The scripted car, once it runs. */
    car: () => car as ScriptedCar,
    vehicle,
    trips,
    drive,
    driveOn,
    /** A second on, the car sets off and drives on for a minute. */
    async setOff() {
      await clock.advance(1_000);
      await driveOn();
    },
    /** The car stops and stands past the grace: the trip it was on is recorded, and is the newest. */
    async park(recorded: number) {
      await drive({ [CAR_SIGNALS.speed]: '0', [CAR_SIGNALS.moving]: 'false' });
      await clock.advance(options.service.tripStopGraceMs + 1_000);
      await eventuallyPasses(async () =>
        assert.equal((await trips()).filter((trip) => !trip.underWay).length, recorded),
      );
      return (await trips())[0];
    },
    /** The hub is down for `downMs` and back, connected to the car again. */
    async restart(downMs: number) {
      await triad.stop();
      await clock.advance(downMs);
      await triad.start();
      await eventuallyPasses(async () => assert.equal((await vehicle()).connected, true));
    },
  };
}

/**
 * A car and the one that takes its name after it (a household's new car named as the old one
 * was), both scripted on `clock`: the hub (`triad`) starts before the tests of the describe it is
 * called in with the first car attached, once it has the car's charge. `replace` removes the first
 * car over the API and attaches the second under its name. All are stopped after the tests.
 */
export function carAndItsSuccessor(
  triad: RestartableVehicleHub,
  options: { clock: VirtualClock; oldValues: Record<string, string>; newValues: Record<string, string> },
) {
  let oldCar: ScriptedCar | undefined;
  let newCar: ScriptedCar | undefined;
  const levelHeard = (values: Record<string, string>) =>
    eventuallyPasses(async () => {
      const { state } = (await triad.api('/api/vehicles/car')).body as { state?: Row };
      assert.equal(state?.['battery.level'], Number(values[CAR_SIGNALS.level]));
    });

  before(async () => {
    const scripted = {
      clock: options.clock,
      subscriptionId: (path: string) => path,
      refuseUnknownSubscriptions: false,
    };
    oldCar = await startScriptedCar({ ...scripted, values: options.oldValues });
    newCar = await startScriptedCar({ ...scripted, values: options.newValues });
    await triad.start();
    await triad.attach(oldCar.url);
    await levelHeard(options.oldValues);
  });
  after(async () => {
    await triad.stop();
    await oldCar?.close();
    await newCar?.close();
  });

  return {
    oldCar: () => oldCar as ScriptedCar,
    newCar: () => newCar as ScriptedCar,
    /** The first car is removed, and the second attached under its name, once the hub has its charge. */
    async replace() {
      const removed = await fetch(`${triad.hub.httpUrl}/api/vehicles/car`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${triad.hub.ownerToken}` },
      });
      assert.equal(removed.status, 204, await removed.text());
      await triad.attach((newCar as ScriptedCar).url);
      await levelHeard(options.newValues);
    },
  };
}
