/**
 * The device listener worker's addresses closed at accept (banned in both login scopes: the bans
 * are the main thread's, which sends each as it starts, with how long it lasts), and when each ends
 * on this thread's monotonic clock: not the wall clock, whose step (NTP correcting a box that booted
 * with a wrong time) would stretch a ban by as much or end it at once. Bounded: an entry is dropped
 * when found expired, and expired ones at the front are dropped when one is added; the main
 * thread's ban tables are bounded and it says when it drops a ban early (ms 0). That alone let
 * expired entries pile up behind a live one at the front (the main thread forgets an expired ban
 * without a word), so `max` bounds them too: when full, the expired ones go, and if none has
 * expired the oldest, whose address is then refused by the main thread at its CONNECT (its login
 * ban still holds there) instead of at accept.
 */
export class AcceptBans {
  private readonly ends = new Map<string, number>();

  constructor(
    private readonly now: () => number = () => performance.now(),
    /** Entries kept at most (the main thread's ban table's size, login.maxTracked). */
    private readonly max = 10_000,
  ) {}

  get size(): number {
    return this.ends.size;
  }

  /** `address` closed at accept for `ms` from now (0 or less: no longer). */
  ban(address: string, ms: number): void {
    this.ends.delete(address);
    if (ms <= 0) return;
    const now = this.now();
    for (const [a, until] of this.ends) {
      if (until > now) break;
      this.ends.delete(a);
    }
    if (this.ends.size >= this.max) this.makeRoom(now);
    this.ends.set(address, now + ms);
  }

  /**
   * Full: every expired entry goes, and if none had, the oldest (a scan of at most `max`, once per
   * ban started while full: each one takes its address `maxFailures` failed logins).
   */
  private makeRoom(now: number): void {
    for (const [a, until] of this.ends) if (until <= now) this.ends.delete(a);
    for (const a of this.ends.keys()) {
      if (this.ends.size < this.max) break;
      this.ends.delete(a);
    }
  }

  /** Whether `address` is to be closed at accept now. */
  banned(address: string): boolean {
    if (this.ends.size === 0) return false;
    const until = this.ends.get(address);
    if (until === undefined) return false;
    if (this.now() < until) return true;
    this.ends.delete(address);
    return false;
  }
}
