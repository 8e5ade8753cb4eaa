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
   * Where the car is saved (see SimulatedCar.saved), so the next run carries on from it (`resume`)
   * rather than from a new car: `triad sim car`'s own state. It is saved every `everyMs` of
   * `clock` (the wall clock) when anything kept has changed since (so each time while it drives or
   * charges), and once stopped: a process killed outright loses at most `everyMs` of driving. `savedAt` in the file is when it
   * was saved (`clock`), `simulatedAt` the simulated time then. The demo saves its car with the
   * rest of the household instead.
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
  /** The car as last saved (JSON), so a car standing still is not written every second. */
  private lastSaved: string | null = null;

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

  /**
   * Saves the car as it is now, unless it has not changed since the last save (a parked car is not
   * written every second). The file writes one save after another, in the order they were asked.
   */
  private async save(): Promise<void> {
    if (!this.keep) return;
    const car = this.car.saved();
    const text = JSON.stringify(car);
    if (text === this.lastSaved) return;
    this.lastSaved = text;
    const saved = await this.keep.file.write({
      savedAt: new Date(this.keep.clock.now()).toISOString(),
      simulatedAt: new Date(this.clock.now()).toISOString(),
      car,
    });
    // Not saved: written again at the next save, changed or not.
    if (!saved && this.lastSaved === text) this.lastSaved = null;
  }

  /** The VISS address to attach the car with. */
  get url(): string {
    return this.server.url;
  }

  get port(): number {
    return this.server.port;
  }
}
