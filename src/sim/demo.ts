import type { HubServices, Subsystem } from '../core/hub.ts';
import { SimulatedHome } from './home.ts';
import { provisionDemoPhones, SimulatedPhones } from './people.ts';

/**
 * The simulated household behind `--demo`: home devices on MQTT and two phones speaking OwnTracks,
 * all talking to the hub over the same protocols and API a real household would use.
 */
export class DemoHousehold implements Subsystem {
  readonly name = 'demo';
  private home: SimulatedHome | null = null;
  private phones: SimulatedPhones | null = null;

  /** `phones: false` for a hub without the people subsystem (tests of other parts). */
  constructor(private readonly options: { phones?: boolean } = {}) {}

  async start(): Promise<void> {}

  async listening(hub: HubServices): Promise<void> {
    const log = hub.log.child('demo');
    this.home = new SimulatedHome({ brokerUrl: hub.mqttUrl, clock: hub.clock, log: log.child('home') });
    await this.home.start();
    if (this.options.phones === false) return;
    const phones = await provisionDemoPhones({ hubUrl: hub.httpUrl, token: hub.ownerToken });
    this.phones = new SimulatedPhones({
      clock: hub.clock,
      hubUrl: hub.httpUrl,
      brokerUrl: hub.mqttUrl,
      phones,
      log: log.child('phones'),
    });
    await this.phones.start();
  }

  async stop(): Promise<void> {
    await this.phones?.stop();
    await this.home?.stop();
  }
}
