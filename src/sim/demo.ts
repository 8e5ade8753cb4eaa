import type { HubServices, Subsystem } from '../core/hub.ts';
import type { Logger } from '../core/log.ts';
import { CarSimulator } from './car/simulator.ts';
import { SimulatedHome } from './home.ts';
import { provisionDemoPhones, SimulatedPhones } from './people.ts';

/** The demo car's name, and the person who drives it (their phone travels in it). */
const DEMO_CAR = { name: 'Family car', id: 'family-car', driver: 'Alex' };

/**
 * The simulated household behind `--demo`: home devices on MQTT, two phones speaking OwnTracks and
 * a car that is its own VISS server, all talking to the hub over the same protocols and API a real
 * household would use.
 */
export class DemoHousehold implements Subsystem {
  readonly name = 'demo';
  private home: SimulatedHome | null = null;
  private phones: SimulatedPhones | null = null;
  private car: CarSimulator | null = null;

  /** `phones: false` for a hub without the people subsystem (tests of other parts). */
  constructor(private readonly options: { phones?: boolean } = {}) {}

  async start(): Promise<void> {}

  async listening(hub: HubServices): Promise<void> {
    const log = hub.log.child('demo');
    this.home = new SimulatedHome({
      brokerUrl: hub.mqttUrl,
      clock: hub.clock,
      log: log.child('home'),
      ...hub.demoMqttLogin,
    });
    await this.home.start();
    await this.startCar(hub, log.child('car'));
    if (this.options.phones === false) return;
    const phones = await provisionDemoPhones({ hubUrl: hub.httpUrl, token: hub.ownerToken });
    this.phones = new SimulatedPhones({
      clock: hub.clock,
      hubUrl: hub.httpUrl,
      brokerUrl: hub.mqttUrl,
      phones,
      // The driver's phone is wherever the car is.
      travelsWith: (person) => (person === DEMO_CAR.driver && this.car ? this.car.car.whereabouts() : null),
      log: log.child('phones'),
    });
    await this.phones.start();
  }

  async stop(): Promise<void> {
    await this.phones?.stop();
    await this.car?.stop();
    await this.home?.stop();
  }

  /**
   * The car runs as a VISS server on a free loopback port, and the hub is pointed at it through
   * the vehicles API, as a user would attach a car gateway. A hub without vehicles skips it.
   */
  private async startCar(hub: HubServices, log: Logger): Promise<void> {
    const call = (path: string, method = 'GET', body?: unknown) =>
      fetch(new URL(path, hub.httpUrl), {
        method,
        headers: { authorization: `Bearer ${hub.ownerToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
    const existing = await call(`/api/vehicles/${DEMO_CAR.id}`);
    if (existing.status === 404 && !(await call('/api/vehicles')).ok) return;
    const car = new CarSimulator({ clock: hub.clock, vissPort: 0, host: '127.0.0.1', log });
    await car.start();
    this.car = car;
    const attached = existing.ok
      ? await call(`/api/vehicles/${DEMO_CAR.id}`, 'PATCH', { viss: car.url })
      : await call('/api/vehicles', 'POST', { name: DEMO_CAR.name, viss: car.url });
    if (!attached.ok) throw new Error(`could not attach the demo car: ${attached.status} ${await attached.text()}`);
    log.info('demo car attached over VISS', { url: car.url });
  }
}
