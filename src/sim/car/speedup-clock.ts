import type { Clock } from '../../core/clock.ts';

/**
 * A clock that runs `speedup` times faster than the one under it, from `startAt` (the simulated
 * time when it is made). Lets `triad sim car` show a commute in minutes on the wall clock.
 */
export class SpeedupClock implements Clock {
  private readonly origin: number;
  private readonly start: number;

  constructor(
    private readonly base: Clock,
    private readonly speedup: number,
    startAt?: number,
  ) {
    if (!(speedup > 0)) throw new Error('speedup must be a positive number');
    this.origin = base.now();
    this.start = startAt ?? this.origin;
  }

  now(): number {
    return this.start + (this.base.now() - this.origin) * this.speedup;
  }

  setTimeout(fn: () => void, ms: number): () => void {
    return this.base.setTimeout(fn, ms / this.speedup);
  }

  setInterval(fn: () => void, ms: number): () => void {
    return this.base.setInterval(fn, Math.max(1, ms / this.speedup));
  }
}
