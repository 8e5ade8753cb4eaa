import { execFile } from 'node:child_process';

/** Linux scheduling policies the writer thread moves between: SCHED_IDLE and the normal SCHED_OTHER. */
export type Policy = 'idle' | 'normal';

/** Sets one thread's scheduling policy; rejects when it cannot. */
export type SetPolicy = (thread: number, policy: Policy) => Promise<void>;

/** Sets it with util-linux's `chrt`, which every mainstream Linux has: Node.js has no call for it. */
export const chrt: SetPolicy = (thread, policy) =>
  new Promise((resolve, reject) => {
    execFile('chrt', [policy === 'idle' ? '--idle' : '--other', '-p', '0', String(thread)], (error) =>
      error ? reject(error) : resolve(),
    );
  });

/** How long the writer keeps up, with nothing waiting for it, before it steps back again. */
export const QUIET_MS = 1000;

/**
 * Runs the SQLite writer thread in Linux's SCHED_IDLE class while the hub keeps up, and in the
 * normal class while writes pile up.
 *
 * Why: on two cores the thread's commits (a few every 50 ms) shared the machine with the broker,
 * the hub's own thread and the devices, and a report that woke while both cores were busy waited
 * for the scheduler's next turn. A SCHED_IDLE thread gives way at once to any thread that wakes.
 * Measured with alternating hubs (four pairs a rate), the round trip's p99 fell from 1.07–1.40 ms
 * to 0.61–1.13 at 1,000 reports/s and from 1.34–2.02 to 1.26–1.40 at 5,000, at the same CPU. Left
 * idle under a flood, though, the thread got what the hub and the broker left over, and ingest ran
 * ~24 % slower (88,000 against 67,000 reports/s): so a backlog (`busy`) puts it back in the normal
 * class until it has kept up for QUIET_MS.
 *
 * Only where it can go both ways: a thread may always step down to SCHED_IDLE, but stepping back
 * needs a nice limit (RLIMIT_NICE) or the CAP_SYS_NICE capability that many services do not have,
 * and a writer stuck idle through a flood is worse than none of this. So `start` tries the whole
 * round first; if any step fails (no `chrt`, not Linux, not allowed), the thread stays normal and
 * nothing more is tried.
 */
export class WriterPriority {
  private state: 'starting' | 'off' | 'idle' | 'normal' = 'starting';
  /** A backlog began while `start` was still finding out. */
  private busyWhileStarting = false;
  private quietTimer: NodeJS.Timeout | null = null;
  private thread = 0;

  constructor(
    private readonly set: SetPolicy = chrt,
    private readonly quietMs = QUIET_MS,
  ) {}

  /** The class the thread is in now, as far as this knows ('off': never moved). */
  get policy(): Policy | 'off' | 'starting' {
    return this.state;
  }

  /** Finds out whether the thread can move both ways, and leaves it idle if so (normal if a backlog began meanwhile). */
  async start(thread: number): Promise<void> {
    this.thread = thread;
    try {
      await this.set(thread, 'idle');
      await this.set(thread, 'normal');
      if (!this.busyWhileStarting) await this.set(thread, 'idle');
      this.state = this.busyWhileStarting ? 'normal' : 'idle';
      if (this.state === 'normal') this.quiet();
    } catch {
      this.state = 'off';
      // It may have stepped down before the step back failed: try once more, quietly.
      this.set(thread, 'normal').catch(() => {});
    }
  }

  /** Writes are piling up: the thread takes its full share until they have not for QUIET_MS. */
  busy(): void {
    this.cancelQuiet();
    if (this.state === 'starting') this.busyWhileStarting = true;
    if (this.state !== 'idle') return;
    this.state = 'normal';
    this.set(this.thread, 'normal').catch(() => {
      this.state = 'off';
    });
  }

  /** Nothing waits for the thread: after QUIET_MS of that, it steps back. */
  quiet(): void {
    if (this.state !== 'normal' || this.quietTimer) return;
    this.quietTimer = setTimeout(() => {
      this.quietTimer = null;
      this.state = 'idle';
      this.set(this.thread, 'idle').catch(() => {
        this.state = 'off';
      });
    }, this.quietMs);
    this.quietTimer.unref();
  }

  stop(): void {
    this.cancelQuiet();
    this.state = 'off';
  }

  private cancelQuiet(): void {
    if (this.quietTimer) clearTimeout(this.quietTimer);
    this.quietTimer = null;
  }
}
