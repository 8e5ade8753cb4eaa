import { VissWebSocketServer } from '../../adapters/viss/server.ts';
import type { Clock } from '../../core/clock.ts';
import type { Logger } from '../../core/log.ts';
import type { SavedStateFile } from '../saved-state.ts';
import { SimulatedCar, type SimulatedCarOptions } from './car.ts';

export interface CarSimulatorOptions extends SimulatedCarOptions {
  clock: Clock;
  /** 0 for any free port. */
  vissPort: number;
  host?: string;
  log?: Logger;
  /**
   * Where the car is saved (see SimulatedCar.saved), every `everyMs` of `clock` and once stopped,
   * so the next run carries on from it (`resume`) rather than from a new car: `triad sim car`'s
   * own state. The demo saves its car with the rest of the household instead.
   */
  keep?: { file: SavedStateFile; clock: Clock; everyMs: number };
}

/** The simulated car behind its own VISS server: a vehicle any VISS client (Triad included) can reach. */
export class CarSimulator {
  readonly car: SimulatedCar;
  private readonly server: VissWebSocketServer;
  private readonly clock: Clock;
  private readonly keep: CarSimulatorOptions['keep'];
  private stopSaving: (() => void) | null = null;

  constructor(options: CarSimulatorOptions) {
    this.clock = options.clock;
    this.keep = options.keep;
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
    if (this.keep && !this.stopSaving)
      this.stopSaving = this.keep.clock.setInterval(() => void this.save(), this.keep.everyMs);
  }

  async stop(): Promise<void> {
    this.stopSaving?.();
    this.stopSaving = null;
    this.car.stop();
    await this.server.stop();
    // Once it stands still: the last values are the ones the next run goes on from.
    await this.save();
  }

  private async save(): Promise<void> {
    await this.keep?.file.write({ savedAt: new Date(this.clock.now()).toISOString(), car: this.car.saved() });
  }

  /** The VISS address to attach the car with. */
  get url(): string {
    return this.server.url;
  }

  get port(): number {
    return this.server.port;
  }
}
