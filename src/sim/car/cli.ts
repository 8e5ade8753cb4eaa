import { SystemClock } from '../../core/clock.ts';
import { HubError } from '../../core/errors.ts';
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
    throw badFlag(`--viss-port must be a port number (0–65535), got ${options.vissPort}`);
  }
  const speedup = options.speedup ?? 1;
  if (!Number.isFinite(speedup) || speedup <= 0) throw badFlag(`--speedup must be a number above 0, got ${speedup}`);
  const startAt = options.start === undefined ? undefined : Date.parse(options.start);
  if (startAt !== undefined && !Number.isFinite(startAt))
    throw badFlag(`--start must be an ISO 8601 time, got ${JSON.stringify(options.start)}`);
  const clock = new SpeedupClock(new SystemClock(), speedup, startAt);
  const host = options.host ?? '127.0.0.1';
  const simulator = new CarSimulator({ clock, vissPort: options.vissPort, host, log });
  try {
    await simulator.start();
  } catch (error) {
    throw listenFailure(error as NodeJS.ErrnoException, options.vissPort, host);
  }
  log.info(`simulated car is running; VISS at ${simulator.url} (subprotocols VISSv3, VISSv2)`);
  const stop = () => {
    void simulator.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return simulator;
}

/** A flag's value the simulator cannot use: the command line prints it as one line. */
function badFlag(message: string): HubError {
  return new HubError(2, 'bad_flag', message);
}

/** Why the VISS server could not listen, naming the flag that changes it. */
function listenFailure(error: NodeJS.ErrnoException, port: number, host: string): Error {
  switch (error.code) {
    case 'EADDRINUSE':
      return new HubError(1, 'port_in_use', `VISS port ${port} is already in use; choose another with --viss-port`);
    case 'EACCES':
      return new HubError(
        1,
        'port_denied',
        `not allowed to listen on VISS port ${port}; choose another with --viss-port`,
      );
    case 'ENOTFOUND':
    case 'EADDRNOTAVAIL':
    case 'EAI_AGAIN':
      return new HubError(1, 'bad_host', `--host ${host} is not an address of this machine (${error.code})`);
    default:
      return new HubError(1, 'start_failed', `the simulated car could not start: ${error.message}`);
  }
}
