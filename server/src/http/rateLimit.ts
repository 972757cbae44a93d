/** How fast one user may start sessions: a sustained rate and a burst on top of it. */
export interface RateSpec {
  perMinute: number;
  burst: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * A token bucket per key (the user): `burst` tokens, refilled at `perMinute`. Users come from the
 * server's token list, so the map stays as small as that list.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly spec: RateSpec,
    private readonly clock: () => number,
  ) {}

  /** Takes one token: 0 when allowed, otherwise the milliseconds until one is available. */
  take(key: string): number {
    const now = this.clock();
    const perMs = this.spec.perMinute / 60_000;
    const bucket = this.buckets.get(key) ?? { tokens: this.spec.burst, at: now };
    // The clock may step back (tests, NTP): never refill from a negative interval.
    bucket.tokens = Math.min(this.spec.burst, bucket.tokens + Math.max(0, now - bucket.at) * perMs);
    bucket.at = now;
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return perMs > 0 ? Math.ceil((1 - bucket.tokens) / perMs) : Number.POSITIVE_INFINITY;
  }
}
