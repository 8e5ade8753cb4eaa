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
   * charges), at once when it sets off, arrives, or its cable goes in or out, and once stopped: a
   * process killed outright loses at most `everyMs` of driving. `savedAt` in the file is when it
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
  /** The saves under way (see save): one write at a time, and the last one the car as it is now. */
  private saving: Promise<void> | null = null;
  private saveAgain = false;
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
    if (this.keep && !this.stopSaving) this.stopSaving = this.keepSaving(this.keep);
  }

  async stop(): Promise<void> {
    this.stopSaving?.();
    this.stopSaving = null;
    this.car.stop();
    await this.server.stop();
    // Once it stands still: the last values are the ones the next run goes on from.
    await this.save();
  }

  /** Saves the car as it changes (see CarSimulatorOptions.keep); returns what stops it. */
  private keepSaving(keep: NonNullable<CarSimulatorOptions['keep']>): () => void {
    const cancelEvery = keep.clock.setInterval(() => void this.save(), keep.everyMs);
    // A departure, an arrival or the cable: saved at once, after the step that changed it (not in
    // it: the car's step is the hot path), so a restart finds the car where it is.
    let driving = this.car.isDriving;
    let plugged = this.car.plugged();
    let soon: NodeJS.Immediate | null = null;
    const unwatch = this.car.watch(() => {
      if (this.car.isDriving === driving && this.car.plugged() === plugged) return;
      driving = this.car.isDriving;
      plugged = this.car.plugged();
      soon ??= setImmediate(() => {
        soon = null;
        void this.save();
      });
    });
    return () => {
      cancelEvery();
      unwatch();
      if (soon) clearImmediate(soon);
    };
  }

  /**
   * Saves the car as it is now, unless it has not changed since the last save. Never two writes at
   * once: asked while one is under way, it saves once more after it, with the car as it is then.
   */
  private save(): Promise<void> {
    if (!this.keep) return Promise.resolve();
    this.saveAgain = true;
    this.saving ??= this.saveWhileAsked(this.keep);
    return this.saving;
  }

  private async saveWhileAsked(keep: NonNullable<CarSimulatorOptions['keep']>): Promise<void> {
    // Once `saving` holds this run (save() sets it when this returns at its first await).
    await null;
    try {
      while (this.saveAgain) {
        this.saveAgain = false;
        const car = this.car.saved();
        const text = JSON.stringify(car);
        if (text === this.lastSaved) continue;
        const saved = await keep.file.write({
          savedAt: new Date(keep.clock.now()).toISOString(),
          simulatedAt: new Date(this.clock.now()).toISOString(),
          car,
        });
        // Not saved: tried again at the next save, changed or not.
        this.lastSaved = saved ? text : null;
      }
    } finally {
      // In the same step as the last look at `saveAgain`: a save asked after it starts a new run.
      this.saving = null;
    }
  }

  /** The VISS address to attach the car with. */
  get url(): string {
    return this.server.url;
  }

  get port(): number {
    return this.server.port;
  }
}
