import { mkdir, rename, rmdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { SystemClock } from '../../core/clock.ts';
import { HubError } from '../../core/errors.ts';
import { FileLock, type LockRefusal } from '../../core/file-lock.ts';
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

/**
 * How often (wall-clock time) the car is saved while it changes (each time while it drives or
 * charges), besides when it is stopped: what a process killed outright loses. Every 10 s, a restart ran the odometer back by up
 * to 10 s of driving, which a hub following the car took for a trip of negative distance. A save
 * writes about 1 KB and syncs it: a few milliseconds, off the car's steps.
 */
const SAVE_EVERY_MS = 1_000;

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
  // One car per state file, before it is read: two saved over each other's car, and a restart
  // resumed whichever wrote last. The lock beside it needs its folder (removed again if the car
  // does not start, as no folder is left behind then).
  const made = kept ? await mkdir(dirname(path), { recursive: true }).catch(() => undefined) : undefined;
  const lock = kept
    ? await lockState(path, new Date(wall.now()), log).catch(async (error) => {
        if (made) await removeMadeFolders(dirname(path), made);
        throw error;
      })
    : null;
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
    await lock?.release();
    if (made) await removeMadeFolders(dirname(path), made);
    throw listenFailure(error as NodeJS.ErrnoException, options.vissPort, host);
  }
  log.info(`simulated car is running; VISS at ${simulator.url} (subprotocols VISSv3, VISSv2)`);
  if (!file) log.info('a new car on a port the system chose; it is not kept (give --state FILE to keep it)');
  else log.info(resume ? `carrying on from ${file.path}` : `a new car; it is kept in ${file.path}`);
  if (options.parkedAt) log.info(`parked at ${options.parkedAt}; it stays there (no commute)`);
  const stop = () => {
    void simulator
      .stop()
      .finally(() => lock?.release())
      .then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return simulator;
}

/**
 * Refuses a --state the car could never be saved to (a folder, a path under a file, nothing),
 * before anything listens: otherwise the simulator said the car was kept there, and every save
 * failed. A folder that does not exist yet is made as the car starts.
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
 * Takes the lock beside the state file (`<file>.lock`, see FileLock): a second simulator on the
 * file is refused, naming the one that holds it; a lock left by one that no longer runs (killed
 * outright) is taken over. A folder the lock cannot be written to cannot take the state either:
 * the car runs on unlocked, and its first save says why it is not kept.
 */
async function lockState(path: string, now: Date, log: Logger): Promise<FileLock | null> {
  try {
    return await FileLock.take(`${path}.lock`, (why) => stateInUse(path, why), now);
  } catch (error) {
    if (error instanceof HubError) throw error;
    log.warn('cannot lock the state file', { path, error });
    return null;
  }
}

/** Why the state file was not taken, as one line naming the simulator that holds it. */
function stateInUse(path: string, why: LockRefusal): HubError {
  const inUse = `the state file ${path} is in use by`;
  switch (why.held) {
    case 'here':
      return badFlag(`${inUse} another simulated car in this process (started ${why.holder.startedAt})`);
    case 'elsewhere':
      return badFlag(
        `${inUse} a simulated car on ${why.holder.host} (pid ${why.holder.pid}, started ${why.holder.startedAt}); stop it first, or, if it is gone, delete ${why.file}`,
      );
    case 'alive':
      return badFlag(
        `${inUse} another simulated car (pid ${why.holder.pid}, started ${why.holder.startedAt}); stop it first, or choose another file with --state`,
      );
    case 'contended':
      return badFlag(`could not take the lock on the state file ${path}; try again`);
  }
}

/** Removes the folders made for the state file, from `folder` up to `made`, if they are empty. */
async function removeMadeFolders(folder: string, made: string): Promise<void> {
  for (let at = folder; ; at = dirname(at)) {
    const removed = await rmdir(at).then(
      () => true,
      () => false,
    );
    if (!removed || at === made || dirname(at) === at) return;
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
