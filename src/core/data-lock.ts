import { join } from 'node:path';
import { HubError } from './errors.ts';
import { FileLock, type LockRefusal } from './file-lock.ts';

export const LOCK_FILE = 'hub.lock';

/**
 * One hub per data folder. Two on one folder each run every rule, so a cron rule fired twice, and
 * every command and resumed timer would go out twice; their writes interleave in one database.
 *
 * The folder's lock is a FileLock (see there): it names the hub that holds it, and one left by a
 * hub that died (a crash, a power cut) is taken over. A lock from another host (a container on a
 * shared volume) cannot be judged from here and is left to the user. A second hub in the same
 * process is refused like any other: it too would run every rule again.
 */
export class DataLock {
  private constructor(private readonly lock: FileLock) {}

  static async take(dataDir: string, now = new Date()): Promise<DataLock> {
    return new DataLock(await FileLock.take(join(dataDir, LOCK_FILE), (why) => inUse(dataDir, why), now));
  }

  /** Lets the folder go, unless another hub has taken it over meanwhile. */
  release(): Promise<void> {
    return this.lock.release();
  }
}

/** Why the folder was not taken, as a hub's user reads it. */
function inUse(dataDir: string, why: LockRefusal): HubError {
  switch (why.held) {
    case 'here':
      return new HubError(
        1,
        'data_in_use',
        `the data folder ${dataDir} is in use by another Triad hub in this process (started ${why.holder.startedAt}); stop it first, or choose another folder`,
      );
    case 'elsewhere':
      return new HubError(
        1,
        'data_in_use',
        `the data folder ${dataDir} is in use by a Triad hub on ${why.holder.host} (pid ${why.holder.pid}, started ${why.holder.startedAt}); stop it first, or, if it is gone, delete ${why.file}`,
      );
    case 'alive':
      return new HubError(
        1,
        'data_in_use',
        `the data folder ${dataDir} is in use by another Triad hub (pid ${why.holder.pid}, started ${why.holder.startedAt}); stop it first, or choose another folder with --data`,
      );
    case 'contended':
      return new HubError(1, 'data_in_use', `could not take the lock on the data folder ${dataDir}; try again`);
  }
}
