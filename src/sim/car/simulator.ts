import { VissWebSocketServer } from '../../adapters/viss/server.ts';
import type { Clock } from '../../core/clock.ts';
import type { Logger } from '../../core/log.ts';
import { SimulatedCar, type SimulatedCarOptions } from './car.ts';

export interface CarSimulatorOptions extends SimulatedCarOptions {
  clock: Clock;
  /** 0 for any free port. */
  vissPort: number;
  host?: string;
  log?: Logger;
}

/** The simulated car behind its own VISS server: a vehicle any VISS client (Triad included) can reach. */
export class CarSimulator {
  readonly car: SimulatedCar;
  private readonly server: VissWebSocketServer;

  constructor(options: CarSimulatorOptions) {
    this.car = new SimulatedCar(options);
    this.server = new VissWebSocketServer({
      port: options.vissPort,
      host: options.host ?? '127.0.0.1',
      clock: options.clock,
      source: this.car,
      log: options.log,
    });
  }

  async start(): Promise<void> {
    await this.server.start();
    this.car.start();
  }

  async stop(): Promise<void> {
    this.car.stop();
    await this.server.stop();
  }

  /** The VISS address to attach the car with. */
  get url(): string {
    return this.server.url;
  }

  get port(): number {
    return this.server.port;
  }
}
