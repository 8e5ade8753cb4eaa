import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { HubError } from './errors.ts';

/** What a data folder's lock file says of the hub that holds it. */
interface Holder {
  pid: number;
  /** The machine (or container) it runs on: a pid means nothing on another one. */
  host: string | null;
  /** The process's start in the kernel's clock ticks (Linux), so a reused pid is not taken for it. */
  since: string | null;
  /**
   * The kernel's id of the boot it ran in (Linux). After a power cut a hub started at boot can be
   * given the same pid at the same tick as the one that died: without the boot, its own dead lock
   * read as held by itself, and it refused to start until someone deleted the file.
   */
  boot: string | null;
  startedAt: string;
}

/** This boot's id, or null off Linux. */
const BOOT_ID = (() => {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
  } catch {
    return null;
  }
})();

export const LOCK_FILE = 'hub.lock';

/**
 * One hub per data folder. Two on one folder each run every rule, so a cron rule fired twice, and
 * every command and resumed timer would go out twice; their writes interleave in one database.
 *
 * The lock file names its holder (pid, host, the process's start) and only ever appears whole: it
 * is written under a name of its own and then linked into place, which fails if a lock is there.
 * A lock left by a hub that died (a crash, a power cut) names a process that is gone, or a pid
 * since given to a process that started later, and is taken over (see takeOver). A lock
 * from another host (a container on a shared volume) cannot be judged from here and is left to
 * the user. A second hub in the same process is refused like any other: it too would run
 * every rule again.
 */
export class DataLock {
  private released = false;

  private constructor(
    private readonly file: string,
    private readonly me: Holder,
  ) {}

  static async take(dataDir: string, now = new Date()): Promise<DataLock> {
    const file = join(dataDir, LOCK_FILE);
    const me: Holder = {
      pid: process.pid,
      host: hostname(),
      since: startOf(process.pid),
      boot: BOOT_ID,
      startedAt: now.toISOString(),
    };
    for (let attempt = 0; attempt < 10; attempt++) {
      if (await placeWhole(file, me)) {
        return new DataLock(file, me);
      }
      const holder = await readHolder(file);
      if (holder === 'gone') continue;
      if (holder !== null && sameHolder(holder, { ...me, startedAt: holder.startedAt })) {
        throw new HubError(
          1,
          'data_in_use',
          `the data folder ${dataDir} is in use by another Triad hub in this process (started ${holder.startedAt}); stop it first, or choose another folder`,
        );
      }
      if (holder !== null && holder.host !== null && holder.host !== me.host) {
        throw new HubError(
          1,
          'data_in_use',
          `the data folder ${dataDir} is in use by a Triad hub on ${holder.host} (pid ${holder.pid}, started ${holder.startedAt}); stop it first, or, if it is gone, delete ${file}`,
        );
      }
      if (holder !== null && alive(holder)) {
        throw new HubError(
          1,
          'data_in_use',
          `the data folder ${dataDir} is in use by another Triad hub (pid ${holder.pid}, started ${holder.startedAt}); stop it first, or choose another folder with --data`,
        );
      }
      if (await takeOver(file, holder, me)) {
        return new DataLock(file, me);
      }
      // Another hub is taking it over: see who holds it in a moment.
      await new Promise((resolve) => setTimeout(resolve, 20 * (attempt + 1)));
    }
    throw new HubError(1, 'data_in_use', `could not take the lock on the data folder ${dataDir}; try again`);
  }

  /** Lets the folder go, unless another hub has taken it over meanwhile. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const holder = await readHolder(this.file);
    if (holder !== null && holder !== 'gone' && sameHolder(holder, this.me)) await unlink(this.file).catch(() => {});
  }
}

/** Writes the holder under a name of its own and links it into place; false when a lock is there. */
async function placeWhole(file: string, holder: Holder): Promise<boolean> {
  const draft = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(draft, `${JSON.stringify(holder)}\n`, { flag: 'wx' });
  try {
    await link(draft, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return false;
  } finally {
    await unlink(draft).catch(() => {});
  }
}

/** How old a takeover's mark must be to be a dead hub's, left mid-takeover. */
const TAKEOVER_STALE_MS = 10_000;

/**
 * Replaces a dead holder's lock with ours, if it is still the one judged dead. One hub at a time
 * takes over (a mark linked beside the lock, as the lock is), and the lock is replaced by a rename,
 * so it is never missing meanwhile: no hub can place a fresh one in between, and of hubs that found
 * the same dead lock only the first replaces it; the others then find it held.
 */
async function takeOver(file: string, judged: Holder | null, me: Holder): Promise<boolean> {
  const mark = `${file}.takeover`;
  if (!(await placeWhole(mark, me))) {
    const since = await stat(mark).then(
      (s) => s.mtimeMs,
      () => null,
    );
    if (since !== null && Date.now() - since > TAKEOVER_STALE_MS) await unlink(mark).catch(() => {});
    return false;
  }
  try {
    const current = await readHolder(file);
    const same =
      judged === null ? current === null : current !== null && current !== 'gone' && sameHolder(current, judged);
    if (!same) return false;
    const draft = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    await writeFile(draft, `${JSON.stringify(me)}\n`, { flag: 'wx' });
    await rename(draft, file);
    return true;
  } finally {
    await unlink(mark).catch(() => {});
  }
}

function sameHolder(a: Holder, b: Holder): boolean {
  return (
    a.pid === b.pid && a.host === b.host && a.since === b.since && a.boot === b.boot && a.startedAt === b.startedAt
  );
}

/** The holder a lock file names; null when it names none readable, 'gone' when there is no file. */
async function readHolder(file: string): Promise<Holder | null | 'gone'> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    return null;
  }
  try {
    const parsed = JSON.parse(text) as Partial<Holder>;
    if (!Number.isInteger(parsed.pid) || (parsed.pid as number) <= 0) return null;
    return {
      pid: parsed.pid as number,
      host: typeof parsed.host === 'string' ? parsed.host : null,
      since: typeof parsed.since === 'string' ? parsed.since : null,
      boot: typeof parsed.boot === 'string' ? parsed.boot : null,
      startedAt: typeof parsed.startedAt === 'string' ? parsed.startedAt : 'at an unknown time',
    };
  } catch {
    // Not a lock any hub of this version wrote whole (they link complete files): nobody holds it.
    return null;
  }
}

function alive(holder: Holder): boolean {
  // Every process of an earlier boot is gone, whatever its pid is given to now.
  if (holder.boot !== null && BOOT_ID !== null && holder.boot !== BOOT_ID) return false;
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    // EPERM: it exists, under another user.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = statOf(holder.pid);
  // A hub killed a moment ago can still be a zombie (exited, not yet reaped by its parent: under a
  // slow init, about a second): signal 0 reaches it, but it holds nothing and never runs again.
  if (stat?.state === 'Z' || stat?.state === 'X') return false;
  // The same pid, started at another time, is another process that was given the number since.
  const since = stat?.since ?? null;
  return holder.since === null || since === null || since === holder.since;
}

/** When a process started, in clock ticks since boot (field 22 of /proc/PID/stat); null off Linux. */
function startOf(pid: number): string | null {
  return statOf(pid)?.since ?? null;
}

/** A process's state letter (field 3 of /proc/PID/stat) and start time (field 22); null off Linux. */
function statOf(pid: number): { state: string; since: string | null } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count after its end.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0], since: fields[19] ?? null };
  } catch {
    return null;
  }
}
