/**
 * All time in the core goes through a Clock, so tests, replays and dry runs can run a day in
 * milliseconds and live runs use the wall clock. Times are epoch milliseconds.
 */
export interface Clock {
  now(): number;
  /** Calls `fn` once after `ms`; returns the function that cancels it. */
  setTimeout(fn: () => void, ms: number): () => void;
  /** Calls `fn` every `ms`; returns the function that cancels it. */
  setInterval(fn: () => void, ms: number): () => void;
}

/** Node caps timers at 2^31-1 ms; longer waits re-arm so far deadlines still fire on time. */
const MAX_TIMER_MS = 2_147_483_647;

interface WallTimer {
  due: number;
  fn: () => void;
  handle: NodeJS.Timeout | undefined;
}

// Plain functions rather than closures per timer: a command arms one, a thousand times a second.
function armWallTimer(timer: WallTimer, delay: number): void {
  timer.handle = setTimeout(fireWallTimer, Math.min(Math.max(0, delay), MAX_TIMER_MS), timer);
  timer.handle.unref();
}

function fireWallTimer(timer: WallTimer): void {
  const left = timer.due - Date.now();
  if (left > 0) armWallTimer(timer, left);
  else timer.fn();
}

/** The wall clock. Its timers are unref'd so a pending timer never keeps a finished process alive. */
export class SystemClock implements Clock {
  now(): number {
    return Date.now();
  }
  setTimeout(fn: () => void, ms: number): () => void {
    const timer: WallTimer = { due: Date.now() + ms, fn, handle: undefined };
    armWallTimer(timer, ms);
    return () => clearTimeout(timer.handle);
  }
  setInterval(fn: () => void, ms: number): () => void {
    const handle = setInterval(fn, ms);
    handle.unref();
    return () => clearInterval(handle);
  }
}

interface VirtualTimer {
  id: number;
  due: number;
  fn: () => void;
  every?: number;
}

/**
 * A clock that only moves when told to. `advance` fires due timers in deadline order and lets
 * promise chains settle between them, so async work started by a timer completes in step.
 */
export class VirtualClock implements Clock {
  private current: number;
  private timers: VirtualTimer[] = [];
  private nextId = 1;
  private readonly alsoWaitFor: Array<() => Promise<unknown>> = [];

  constructor(start: number | Date = Date.UTC(2026, 0, 1)) {
    this.current = typeof start === 'number' ? start : start.getTime();
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): () => void {
    return this.add({ id: this.nextId++, due: this.current + Math.max(0, ms), fn });
  }

  setInterval(fn: () => void, ms: number): () => void {
    const every = Math.max(1, ms);
    return this.add({ id: this.nextId++, due: this.current + every, fn, every });
  }

  /**
   * Also waits for `idle` wherever advance lets work settle. Work a timer starts may go through
   * real I/O (a store's writes on a thread of their own) whose answer comes after any number of
   * event-loop turns on a busy machine; virtual time then moves past it only once it is done.
   */
  waitAlsoFor(idle: () => Promise<unknown>): () => void {
    this.alsoWaitFor.push(idle);
    return () => {
      const at = this.alsoWaitFor.indexOf(idle);
      if (at >= 0) this.alsoWaitFor.splice(at, 1);
    };
  }

  /** Number of timers still waiting. */
  get pending(): number {
    return this.timers.length;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  async advance(ms: number): Promise<void> {
    await this.advanceTo(this.current + ms);
  }

  async advanceTo(time: number): Promise<void> {
    await this.settle();
    for (;;) {
      const next = this.timers.reduce<VirtualTimer | undefined>((a, b) => (!a || b.due < a.due ? b : a), undefined);
      if (!next || next.due > time) break;
      this.current = Math.max(this.current, next.due);
      if (next.every) next.due += next.every;
      else this.timers = this.timers.filter((t) => t !== next);
      next.fn();
      await this.settle();
    }
    this.current = Math.max(this.current, time);
    await this.settle();
  }

  /** Lets pending callbacks and I/O run, and what waitAlsoFor names finish (and its callbacks run). */
  private async settle(): Promise<void> {
    await settle();
    if (this.alsoWaitFor.length === 0) return;
    // A copy: a hub that stops meanwhile takes its own out of the list.
    for (const idle of [...this.alsoWaitFor]) await idle();
    await settle();
  }

  private add(timer: VirtualTimer): () => void {
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((t) => t.id !== timer.id);
    };
  }
}

/** Lets pending promise callbacks and I/O callbacks run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
