import { mkdir, rename, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { SystemClock } from '../../core/clock.ts';
import { HubError } from '../../core/errors.ts';
import { createLogger, type Logger } from '../../core/log.ts';
import { SavedStateFile } from '../saved-state.ts';
import { type Place, type SavedCar, savedCarFrom } from './car.ts';
import { CarSimulator } from './simulator.ts';
import { SpeedupClock } from './speedup-clock.ts';

export interface CarSimulatorCommandOptions {
  vissPort: number;
  host?: string;
  /** Simulated seconds per wall-clock second; 1 by default. */
  speedup?: number;
  /** The simulated time to start at (ISO 8601); now by default. */
  start?: string;
  /**
   * Where the car is kept between runs: `triad-data/sim-car-<port>.json` in the working folder
   * by default (the hub's default data folder; the port is the car's address, so two cars kept
   * in one folder stay two cars). With `--viss-port 0` the system picks a new port each run, so
   * the port names no car: such a car is kept only where `--state` says.
   */
  stateFile?: string;
  /**
   * `--at home|work`: the car starts parked there (at home with its cable in, a kept car too) and
   * stays: no commute. Without it, a new car is where the commute puts it at this hour and keeps
   * the commute, so what a test or a person sees depended on the time of day.
   */
  parkedAt?: Place;
}

/** How often (wall-clock time) the car is saved while it runs, besides when it is stopped. */
const SAVE_EVERY_MS = 10_000;

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
  const wall = new SystemClock();
  const clock = new SpeedupClock(wall, speedup, startAt);
  const host = options.host ?? '127.0.0.1';
  // A restarted simulator carries on where it stopped: a hub following it would otherwise see the
  // odometer run back (and drop that trip as a negative distance), the charge and the locks reset.
  // Every run on port 0 shared `sim-car-0.json` before: unrelated throwaway cars (tests, scripts)
  // resumed each other's odometer and charge.
  const kept = options.stateFile !== undefined || options.vissPort !== 0;
  const path = resolve(options.stateFile ?? join('triad-data', `sim-car-${options.vissPort}.json`));
  if (kept) await checkStatePath(options.stateFile, path);
  const file = kept ? new SavedStateFile(path, log) : null;
  const resume = file ? await savedCar(file, log) : undefined;
  const simulator = new CarSimulator({
    clock,
    vissPort: options.vissPort,
    host,
    log,
    resume,
    keep: file ? { file, clock: wall, everyMs: SAVE_EVERY_MS } : undefined,
    parkedAt: options.parkedAt,
    commute: options.parkedAt === undefined,
  });
  try {
    await simulator.start();
  } catch (error) {
    throw listenFailure(error as NodeJS.ErrnoException, options.vissPort, host);
  }
  // Only once it runs: a start that fails leaves no folder behind. One that cannot be made is
  // said by the first save that fails; the car runs on.
  if (file) await mkdir(dirname(file.path), { recursive: true }).catch(() => undefined);
  log.info(`simulated car is running; VISS at ${simulator.url} (subprotocols VISSv3, VISSv2)`);
  if (!file) log.info('a new car on a port the system chose; it is not kept (give --state FILE to keep it)');
  else log.info(resume ? `carrying on from ${file.path}` : `a new car; it is kept in ${file.path}`);
  if (options.parkedAt) log.info(`parked at ${options.parkedAt}; it stays there (no commute)`);
  const stop = () => {
    void simulator.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return simulator;
}

/**
 * Refuses a --state the car could never be saved to (a folder, a path under a file, nothing),
 * before anything listens: otherwise the simulator said the car was kept there, and every save
 * failed. A folder that does not exist yet is made at the first save.
 */
async function checkStatePath(given: string | undefined, path: string): Promise<void> {
  if (given !== undefined && given.trim() === '') throw badFlag('--state must name a file, got ""');
  const kind = async (p: string) => (await stat(p).catch(() => null))?.isDirectory();
  if ((await kind(path)) === true)
    throw badFlag(`--state ${path} is a folder; name a file in it, such as ${join(path, 'car.json')}`);
  for (let folder = dirname(path); ; folder = dirname(folder)) {
    const isFolder = await kind(folder);
    if (isFolder === false) throw badFlag(`--state ${path} is under ${folder}, which is a file, not a folder`);
    if (isFolder === true || dirname(folder) === folder) return;
  }
}

/**
 * The car saved by an earlier run, if there is one. A file the car cannot use (damaged, or from a
 * version that kept other things) is said once and moved aside, not overwritten by the next
 * save: a hand-edit gone wrong should not cost the car's odometer and charge.
 */
async function savedCar(file: SavedStateFile, log: Logger): Promise<SavedCar | undefined> {
  const saved = await file.read();
  const car = saved.car === undefined ? null : savedCarFrom(saved.car);
  if (car) return car;
  if (!(await stat(file.path).catch(() => null))) return undefined;
  const aside = `${file.path}.unusable-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  try {
    await rename(file.path, aside);
    log.warn('the saved car cannot be resumed; a new car starts, and the file is kept aside', { aside });
  } catch (error) {
    log.warn('the saved car cannot be resumed; a new car starts', { path: file.path, error });
  }
  return undefined;
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
