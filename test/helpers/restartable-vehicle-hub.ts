import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import type { Clock, VirtualClock } from '../../src/core/clock.ts';
import { Hub } from '../../src/core/hub.ts';
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
