import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';

/** What a lock file says of the process that holds it. */
export interface LockHolder {
  pid: number;
  /** The machine (or container) it runs on: a pid means nothing on another one. */
  host: string | null;
  /** The process's start in the kernel's clock ticks (Linux), so a reused pid is not taken for it. */
  since: string | null;
  /**
   * The kernel's id of the boot it ran in (Linux). After a power cut a process started at boot can
   * be given the same pid at the same tick as the one that died: without the boot, its own dead
   * lock read as held by itself, and it refused to start until someone deleted the file.
   */
  boot: string | null;
  startedAt: string;
}

/**
 * Why a lock was not taken, for the holder of the lock to word as its users know it: held by this
 * process already, by a process on another host (which cannot be judged from here), by a live
 * process here, or contended by others taking it over at the same time, past every retry.
 */
export type LockRefusal =
  | { held: 'here' | 'elsewhere' | 'alive'; holder: LockHolder; file: string }
  | { held: 'contended'; file: string };

/** This boot's id, or null off Linux. */
const BOOT_ID = (() => {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
  } catch {
    return null;
  }
})();

/**
 * One process at a time holds a lock file (the hub's data folder, a simulated car's state file).
 *
 * The lock file names its holder (pid, host, the process's start) and only ever appears whole: it
 * is written under a name of its own and then linked into place, which fails if a lock is there.
 * A lock left by a process that died (a crash, SIGKILL, a power cut) names a process that is gone,
 * or a pid since given to a process that started later, and is taken over (see takeOver). A lock
 * from another host (a container on a shared volume) cannot be judged from here and is left to
 * the user. A second taker in the same process is refused like any other.
 */
export class FileLock {
  private released = false;

  private constructor(
    readonly file: string,
    private readonly me: LockHolder,
  ) {}

  /**
   * Takes the lock `file` (its folder must exist), or throws what `refuse` makes of why not.
   * Errors of the file system itself (a folder that cannot be written) are thrown as they are.
   */
  static async take(file: string, refuse: (why: LockRefusal) => Error, now = new Date()): Promise<FileLock> {
    const me: LockHolder = {
      pid: process.pid,
      host: hostname(),
      since: startOf(process.pid),
      boot: BOOT_ID,
      startedAt: now.toISOString(),
    };
    for (let attempt = 0; attempt < 10; attempt++) {
      if (await placeWhole(file, me)) {
        return new FileLock(file, me);
      }
      const holder = await readHolder(file);
      if (holder === 'gone') continue;
      if (holder !== null && sameHolder(holder, { ...me, startedAt: holder.startedAt })) {
        throw refuse({ held: 'here', holder, file });
      }
      if (holder !== null && holder.host !== null && holder.host !== me.host) {
        throw refuse({ held: 'elsewhere', holder, file });
      }
      if (holder !== null && alive(holder)) {
        throw refuse({ held: 'alive', holder, file });
      }
      if (await takeOver(file, holder, me)) {
        return new FileLock(file, me);
      }
      // Another process is taking it over: see who holds it in a moment.
      await new Promise((resolve) => setTimeout(resolve, 20 * (attempt + 1)));
    }
    throw refuse({ held: 'contended', file });
  }

  /** Lets the lock go, unless another process has taken it over meanwhile. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const holder = await readHolder(this.file);
    if (holder !== null && holder !== 'gone' && sameHolder(holder, this.me)) await unlink(this.file).catch(() => {});
  }
}

/** Writes the holder under a name of its own and links it into place; false when a lock is there. */
async function placeWhole(file: string, holder: LockHolder): Promise<boolean> {
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

/** How old a takeover's mark must be to be a dead process's, left mid-takeover. */
const TAKEOVER_STALE_MS = 10_000;

/**
 * Replaces a dead holder's lock with ours, if it is still the one judged dead. One process at a
 * time takes over (a mark linked beside the lock, as the lock is), and the lock is replaced by a
 * rename, so it is never missing meanwhile: no process can place a fresh one in between, and of
 * those that found the same dead lock only the first replaces it; the others then find it held.
 */
async function takeOver(file: string, judged: LockHolder | null, me: LockHolder): Promise<boolean> {
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

function sameHolder(a: LockHolder, b: LockHolder): boolean {
  return (
    a.pid === b.pid && a.host === b.host && a.since === b.since && a.boot === b.boot && a.startedAt === b.startedAt
  );
}

/** The holder a lock file names; null when it names none readable, 'gone' when there is no file. */
async function readHolder(file: string): Promise<LockHolder | null | 'gone'> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    return null;
  }
  try {
    const parsed = JSON.parse(text) as Partial<LockHolder>;
    if (!Number.isInteger(parsed.pid) || (parsed.pid as number) <= 0) return null;
    return {
      pid: parsed.pid as number,
      host: typeof parsed.host === 'string' ? parsed.host : null,
      since: typeof parsed.since === 'string' ? parsed.since : null,
      boot: typeof parsed.boot === 'string' ? parsed.boot : null,
      startedAt: typeof parsed.startedAt === 'string' ? parsed.startedAt : 'at an unknown time',
    };
  } catch {
    // Not a lock any process of this version wrote whole (they link complete files): nobody holds it.
    return null;
  }
}

function alive(holder: LockHolder): boolean {
  // Every process of an earlier boot is gone, whatever its pid is given to now.
  if (holder.boot !== null && BOOT_ID !== null && holder.boot !== BOOT_ID) return false;
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    // EPERM: it exists, under another user.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = statOf(holder.pid);
  // A process killed a moment ago can still be a zombie (exited, not yet reaped by its parent: under a
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
