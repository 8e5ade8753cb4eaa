import type { Clock } from '../core/clock.ts';

export interface RateLimit {
  /** How many calls may come at once. */
  burst: number;
  /** How many calls come back per second. */
  perSecond: number;
}

/**
 * A token bucket per key (a token id, a name and address): `burst` calls at once, then
 * `perSecond`. An empty bucket answers how long to wait, which is the back-off a client sees in
 * `Retry-After`. Idle full buckets are dropped, so the map holds only recent callers.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly limit: RateLimit,
    private readonly clock: Clock,
  ) {}

  /** Takes one call from `key`'s bucket: 0 when allowed, else the seconds to wait. */
  take(key: string): number {
    const now = this.clock.now();
    const bucket = this.buckets.get(key) ?? { tokens: this.limit.burst, at: now };
    bucket.tokens = Math.min(this.limit.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.limit.perSecond);
    bucket.at = now;
    if (bucket.tokens < 1) {
      this.buckets.set(key, bucket);
      return Math.ceil((1 - bucket.tokens) / this.limit.perSecond);
    }
    bucket.tokens -= 1;
    if (this.buckets.size > 50_000) this.sweep(now);
    this.buckets.set(key, bucket);
    return 0;
  }

  /** How long `key` must wait before its next call (0: it may call now), taking nothing. */
  wait(key: string): number {
    const bucket = this.buckets.get(key);
    if (!bucket) return 0;
    const tokens = Math.min(
      this.limit.burst,
      bucket.tokens + ((this.clock.now() - bucket.at) / 1000) * this.limit.perSecond,
    );
    return tokens >= 1 ? 0 : Math.ceil((1 - tokens) / this.limit.perSecond);
  }

  /** Forgets a key (a successful sign-in clears its failures). */
  reset(key: string): void {
    this.buckets.delete(key);
  }

  private sweep(now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * this.limit.perSecond >= this.limit.burst)
        this.buckets.delete(key);
    }
  }
}
