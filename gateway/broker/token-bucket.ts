/** A token bucket: `burst` tokens at most, refilled at `perSecond`; time in ms from the caller. */
export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.at = now;
  }

  /** Takes one token if there is one. */
  take(now: number): boolean {
    if (now > this.at) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) * this.perSecond) / 1000);
      this.at = now;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Ms until `take` would succeed (0: now); after a `take` at `now` or later. */
  waitMs(now: number): number {
    const tokens = Math.min(this.burst, this.tokens + (Math.max(0, now - this.at) * this.perSecond) / 1000);
    return tokens >= 1 ? 0 : Math.ceil(((1 - tokens) * 1000) / this.perSecond);
  }

  /** Whether the bucket is full at `now` (forgetting it loses nothing). */
  full(now: number): boolean {
    return this.tokens + (Math.max(0, now - this.at) * this.perSecond) / 1000 >= this.burst;
  }
}
