import { SystemClock } from '../../core/clock.ts';
import { createLogger } from '../../core/log.ts';
import { CarSimulator } from './simulator.ts';
import { SpeedupClock } from './speedup-clock.ts';

export interface CarSimulatorCommandOptions {
  vissPort: number;
  host?: string;
  /** Simulated seconds per wall-clock second; 1 by default. */
  speedup?: number;
  /** The simulated time to start at (ISO 8601); now by default. */
  start?: string;
}

/**
 * `triad sim car --viss-port N`: the simulated car alone, as a VISS server on its own port (no
 * hub), until the process is stopped.
 */
export async function runCarSimulatorCommand(options: CarSimulatorCommandOptions): Promise<CarSimulator> {
  const log = createLogger({ level: 'info' });
  if (!Number.isInteger(options.vissPort) || options.vissPort < 0 || options.vissPort > 65_535) {
    throw new Error(`--viss-port must be a port number, not ${options.vissPort}`);
  }
  const startAt = options.start === undefined ? undefined : Date.parse(options.start);
  if (startAt !== undefined && !Number.isFinite(startAt))
    throw new Error(`--start must be an ISO time, not ${options.start}`);
  const clock = new SpeedupClock(new SystemClock(), options.speedup ?? 1, startAt);
  const simulator = new CarSimulator({ clock, vissPort: options.vissPort, host: options.host ?? '127.0.0.1', log });
  try {
    await simulator.start();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new Error(`VISS port ${options.vissPort} is already in use; choose another with --viss-port`);
    }
    throw error;
  }
  log.info(`simulated car is running; VISS at ${simulator.url} (subprotocols VISSv3, VISSv2)`);
  const stop = () => {
    void simulator.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return simulator;
}
