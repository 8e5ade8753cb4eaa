import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';

/** Linux scheduling classes the writer thread moves between: SCHED_IDLE and the normal SCHED_OTHER. */
export type Policy = 'idle' | 'normal';

/** Sets one thread's scheduling class; rejects when it cannot. */
export type SetPolicy = (thread: number, policy: Policy) => Promise<void>;

/** Whether this process may move a thread down to SCHED_IDLE and back up again. */
export type CanMove = () => Promise<boolean>;

/** util-linux's `chrt` (every mainstream Linux has it; Node.js has no call for it), by its full path. */
const CHRT = ['/usr/bin/chrt', '/bin/chrt'].find((path) => existsSync(path)) ?? null;

function run(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!CHRT) return reject(new Error('no chrt on this machine'));
    execFile(CHRT, args, (error) => (error ? reject(error) : resolve()));
  });
}

/**
 * The shell loop behind ChrtMover: one line `idle|other THREAD` in, one `ok` or `failed` out. The
 * policy and thread come only from ChrtMover, checked there; `$0` is chrt's full path.
 */
const MOVER_SCRIPT = `while read -r policy thread; do
  if "$0" "--$policy" -p 0 "$thread" >/dev/null 2>&1; then echo ok; else echo failed; fi
done`;

/**
 * Moves threads through one long-lived shell that runs `chrt` for each move, instead of a new
 * process started from the hub for each. Starting a process forks the hub: its page tables are
 * copied in the event loop's own thread, and the writes that follow meet copy-on-write faults
 * until the child has replaced itself. Measured at 1,000 reports/s, one move held the event loop
 * 2–16 ms (the hub's worst round trips), and a busy spell's moves come in pairs. Here the fork
 * is the shell's, a process of a few hundred kilobytes; the hub writes a line and reads one.
 * The shell is started at the first move and left to end with the hub: it is not waited for
 * (unref), and its input closes when the hub exits, which ends its loop.
 */
export class ChrtMover {
  /** The shell while it runs, with the moves sent to it and not yet answered, in order. */
  private shell: MoverShell | null = null;

  constructor(private readonly chrtPath: string | null = CHRT) {}

  /** The shell's process id while it runs. */
  get shellPid(): number | undefined {
    return this.shell?.process.pid;
  }

  readonly set: SetPolicy = (thread, policy) => {
    if (!Number.isInteger(thread) || thread <= 0) return Promise.reject(new Error(`not a thread id: ${thread}`));
    if (!this.chrtPath) return Promise.reject(new Error('no chrt on this machine'));
    const shell = this.shell ?? this.start(this.chrtPath);
    return new Promise<void>((resolve, reject) => {
      shell.pending.push({ resolve, reject });
      shell.process.stdin.write(`${policy === 'idle' ? 'idle' : 'other'} ${thread}\n`);
    });
  };

  /** Ends the shell; moves still waiting fail. */
  close(): void {
    const shell = this.shell;
    this.shell = null;
    if (!shell) return;
    shell.process.stdin.end();
    shell.process.kill();
    failAll(shell, new Error('the thread mover was closed'));
  }

  /**
   * Starts a shell. Its answers and its end concern only the moves sent to it: a shell that ends
   * late, after another has replaced it, fails its own moves and none of the new one's.
   */
  private start(chrtPath: string): MoverShell {
    const shell: MoverShell = {
      process: spawn('/bin/sh', ['-c', MOVER_SCRIPT, chrtPath], { stdio: 'pipe' }),
      pending: [],
    };
    this.shell = shell;
    createInterface({ input: shell.process.stdout }).on('line', (line) => {
      const move = shell.pending.shift();
      if (line === 'ok') move?.resolve();
      else move?.reject(new Error('chrt could not move the thread'));
    });
    const gone = (error?: Error) => {
      // A later move starts a new shell.
      if (this.shell === shell) this.shell = null;
      failAll(shell, error ?? new Error('the thread mover ended'));
    };
    shell.process.on('error', gone);
    shell.process.on('exit', () => gone());
    // A shell that cannot be written to (it ended) is reported by 'exit' or 'error' above.
    shell.process.stdin.on('error', () => {});
    shell.process.unref();
    for (const stream of [shell.process.stdin, shell.process.stdout, shell.process.stderr])
      (stream as { unref?: () => void }).unref?.();
    return shell;
  }
}

interface MoverShell {
  process: ChildProcessWithoutNullStreams;
  pending: Array<{ resolve: () => void; reject: (error: Error) => void }>;
}

function failAll(shell: MoverShell, error: Error): void {
  for (const move of shell.pending.splice(0)) move.reject(error);
}

/** The mover every writer shares, started at its first move. */
const sharedMover = new ChrtMover();

/**
 * Asks a throwaway process, not the writer: a thread may always step down to SCHED_IDLE, but
 * stepping back needs an RLIMIT_NICE or the CAP_SYS_NICE capability that many services and
 * containers lack, and a writer stuck idle through a flood is worse than none of this. `chrt`
 * starts a second `chrt` in the idle class, which tries to put itself back.
 */
export const chrtCanMove: CanMove = () =>
  run(['--idle', '0', CHRT ?? 'chrt', '--other', '0', CHRT ?? 'chrt', '--help']).then(
    () => true,
    () => false,
  );

/** How long the writer keeps up, with nothing waiting for it, before it steps back again. */
export const QUIET_MS = 1000;

/**
 * Runs the SQLite writer thread in Linux's SCHED_IDLE class while the hub keeps up, and in the
 * normal class while writes pile up.
 *
 * Why: on two cores the thread's commits (a few every 50 ms) shared the machine with the broker,
 * the hub's own thread and the devices, and a report that woke while both cores were busy waited
 * for the scheduler's next turn. A SCHED_IDLE thread gives way at once to any thread that wakes.
 * Measured with alternating hubs (four pairs a round; three rounds at 1,000 reports/s, two at
 * 5,000), the round trip's p99 fell from 0.96–1.40 ms to 0.60–1.25 at 1,000/s and from 1.34–2.45
 * to 1.20–1.99 at 5,000/s, at the same CPU within the noise. Left idle under a flood, though, the thread got what the hub and the broker left over,
 * and ingest ran ~24 % slower (88,000 against 67,000 reports/s): so a backlog (`busy`) puts it
 * back in the normal class until it has kept up for QUIET_MS.
 *
 * Only where it can go both ways (CanMove, asked once): elsewhere (no `chrt`, not Linux, not
 * allowed) the thread is never touched. Moves are made one at a time, in order, and only the
 * latest wanted class is applied, so the kernel ends where the last call left it.
 */
export class WriterPriority {
  private state: 'starting' | 'off' | 'on' = 'starting';
  /** The class wanted now, and the one the kernel was last told. */
  private wanted: Policy = 'idle';
  private applied: Policy = 'normal';
  private moving = false;
  private quietTimer: NodeJS.Timeout | null = null;
  private thread = 0;
  /** Bumped by start and stop, so the moves of a thread that is gone are dropped. */
  private generation = 0;

  constructor(
    private readonly set: SetPolicy = sharedMover.set,
    private readonly canMove: CanMove = chrtCanMove,
    private readonly quietMs = QUIET_MS,
  ) {}

  /** 'idle' or 'normal' as the kernel was last told; 'off' where it is never moved; 'starting' before it knows. */
  get policy(): Policy | 'off' | 'starting' {
    return this.state === 'on' ? this.applied : this.state;
  }

  /** Takes a (new) writer thread: finds out once whether it can move, and then leaves it idle unless writes pile up. */
  async start(thread: number): Promise<void> {
    const generation = ++this.generation;
    this.cancelQuiet();
    this.thread = thread;
    this.applied = 'normal';
    if (this.state === 'starting' && !(await this.canMove())) {
      if (generation === this.generation) this.state = 'off';
      return;
    }
    if (generation !== this.generation || this.state === 'off') return;
    this.state = 'on';
    await this.move();
    if (this.wanted === 'normal') this.quiet();
  }

  /** Writes are piling up: the thread takes its full share until they have not for QUIET_MS. */
  busy(): void {
    this.cancelQuiet();
    this.wanted = 'normal';
    void this.move();
  }

  /** Nothing waits for the thread: after QUIET_MS of that, it steps back. */
  quiet(): void {
    if (this.wanted !== 'normal' || this.quietTimer) return;
    this.quietTimer = setTimeout(() => {
      this.quietTimer = null;
      this.wanted = 'idle';
      void this.move();
    }, this.quietMs);
    this.quietTimer.unref();
  }

  /** The thread is gone (closed, or died): nothing more is done to it. */
  stop(): void {
    this.generation++;
    this.cancelQuiet();
    this.thread = 0;
    this.wanted = 'idle';
  }

  /**
   * Applies the wanted class, one move at a time, until the kernel has the latest; a thread that
   * took over meanwhile (start) is picked up on the next round.
   */
  private async move(): Promise<void> {
    if (this.moving) return;
    this.moving = true;
    try {
      for (;;) {
        const { generation, thread, wanted } = this;
        if (this.state !== 'on' || thread <= 0 || this.applied === wanted) return;
        try {
          await this.set(thread, wanted);
        } catch {
          // A thread that ended meanwhile: a new one may have taken over, and is moved next.
          if (generation !== this.generation) continue;
          // It could move a moment ago and cannot now: leave it be.
          return;
        }
        if (generation === this.generation) this.applied = wanted;
      }
    } finally {
      this.moving = false;
    }
  }

  private cancelQuiet(): void {
    if (this.quietTimer) clearTimeout(this.quietTimer);
    this.quietTimer = null;
  }
}
