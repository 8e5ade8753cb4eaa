import { readFileSync } from 'node:fs';
import { open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { HubError } from './errors.ts';

/** What a data folder's lock file says of the hub that holds it. */
interface Holder {
  pid: number;
  /** The process's start in the kernel's clock ticks (Linux), so a reused pid is not taken for it. */
  since: string | null;
  startedAt: string;
}

export const LOCK_FILE = 'hub.lock';

/**
 * One hub per data folder. Two on one folder each run every rule, so a cron rule fired twice, and
 * every command and resumed timer would go out twice; their writes interleave in one database. The
 * lock is a file made exclusively (O_EXCL) holding the holder's pid. A lock left by a hub that
 * died (a crash, a power cut) names a process that is gone, or a pid now used by another process
 * that started later, and is taken over. Hubs in one process (tests, which restart a hub on its
 * folder without stopping the first, as a crash would leave it) share it.
 */
export class DataLock {
  private constructor(private readonly file: string) {}

  static async take(dataDir: string, now = new Date()): Promise<DataLock> {
    const file = join(dataDir, LOCK_FILE);
    const me: Holder = { pid: process.pid, since: startOf(process.pid), startedAt: now.toISOString() };
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const handle = await open(file, 'wx');
        try {
          await handle.writeFile(`${JSON.stringify(me)}\n`);
        } finally {
          await handle.close();
        }
        return new DataLock(file);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const holder = await readHolder(file);
      if (holder && holder.pid === process.pid) return new DataLock(file);
      if (holder && alive(holder)) {
        throw new HubError(
          1,
          'data_in_use',
          `the data folder ${dataDir} is in use by another Triad hub (pid ${holder.pid}, started ${holder.startedAt}); stop it first, or choose another folder with --data`,
        );
      }
      // Left by a hub that is gone: taken over (another hub starting at the same moment may win).
      await unlink(file).catch(() => {});
    }
    throw new HubError(1, 'data_in_use', `could not take the lock on the data folder ${dataDir}; try again`);
  }

  /** Lets the folder go, unless another process has taken it over meanwhile. */
  async release(): Promise<void> {
    const holder = await readHolder(this.file);
    if (holder?.pid === process.pid) await unlink(this.file).catch(() => {});
  }
}

async function readHolder(file: string): Promise<Holder | null> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<Holder>;
    if (!Number.isInteger(parsed.pid) || (parsed.pid as number) <= 0) return null;
    return {
      pid: parsed.pid as number,
      since: typeof parsed.since === 'string' ? parsed.since : null,
      startedAt: typeof parsed.startedAt === 'string' ? parsed.startedAt : 'at an unknown time',
    };
  } catch {
    // Unreadable or half-written (a hub that died while writing it): nobody holds it.
    return null;
  }
}

function alive(holder: Holder): boolean {
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    // EPERM: it exists, under another user.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // The same pid, started at another time, is another process that was given the number since.
  const since = startOf(holder.pid);
  return holder.since === null || since === null || since === holder.since;
}

/** When a process started, in clock ticks since boot (field 22 of /proc/PID/stat); null off Linux. */
function startOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count after its end.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}
