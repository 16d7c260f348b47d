/**
 * The one source of time for the gateway. Everything that waits (heartbeat
 * supervision, welfare checks, hold-open timers, escalations, poll schedules)
 * asks a Clock, so tests run on fake time (DESIGN: "Inject the clock").
 */
export interface Clock {
  /** Wall-clock time, epoch milliseconds. */
  now(): number;
  /** Monotonic milliseconds for measuring intervals (never jumps back). */
  monotonic(): number;
  setTimeout(fn: () => void, ms: number): ClockTimer;
  clearTimeout(timer: ClockTimer): void;
}

export interface ClockTimer {
  /** Lets the process exit while this timer is pending (real clock only). */
  unref(): void;
}

class RealTimer implements ClockTimer {
  constructor(readonly handle: NodeJS.Timeout) {}
  unref(): void {
    this.handle.unref();
  }
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (fn, ms) => new RealTimer(setTimeout(fn, ms)),
  clearTimeout: (timer) => clearTimeout((timer as RealTimer).handle),
};

interface FakePending {
  at: number;
  order: number;
  fn: () => void;
  cancelled: boolean;
  unref(): void;
}

/**
 * A clock that only moves when a test says so. `advance(ms)` fires every timer
 * that falls due, in deadline order, with `now()` set to each deadline as it fires.
 */
export class FakeClock implements Clock {
  /** Monotonic time; the wall clock reads it plus `wallStep`. */
  private current: number;
  /** Steps of the wall clock alone (stepWall), as NTP or an operator setting the clock makes. */
  private wallStep = 0;
  /** Time suspended (suspend): the wall and boot clocks count it, the monotonic clock does not. */
  private suspended = 0;
  private order = 0;
  private pending: FakePending[] = [];

  constructor(startMs = Date.UTC(2026, 0, 5, 9, 0, 0)) {
    this.current = startMs;
  }

  now(): number {
    return this.current + this.wallStep;
  }

  monotonic(): number {
    return this.current;
  }

  /** The boot clock (CLOCK_BOOTTIME): the monotonic clock plus the time suspended. */
  boottime(): number {
    return this.current + this.suspended;
  }

  setTimeout(fn: () => void, ms: number): ClockTimer {
    const timer: FakePending = {
      at: this.current + Math.max(0, ms),
      order: this.order++,
      fn,
      cancelled: false,
      unref() {},
    };
    this.pending.push(timer);
    return timer;
  }

  clearTimeout(timer: ClockTimer): void {
    (timer as FakePending).cancelled = true;
    this.pending = this.pending.filter((p) => p !== timer);
  }

  /** Moves time forward, firing due timers in order (timers they set fire too if due). */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      let next: FakePending | undefined;
      for (const p of this.pending) {
        if (p.at <= target && (!next || p.at < next.at || (p.at === next.at && p.order < next.order)))
          next = p;
      }
      if (!next) break;
      this.pending = this.pending.filter((p) => p !== next);
      this.current = Math.max(this.current, next.at);
      if (!next.cancelled) next.fn();
    }
    this.current = target;
  }

  /**
   * Moves the wall and the monotonic clock together to wall time `ms` (a jump in which time
   * passed); does not fire timers.
   */
  set(ms: number): void {
    this.current = ms - this.wallStep;
  }

  /**
   * Steps the wall clock alone by `ms` (negative: set back), as an NTP step or an operator setting
   * the clock does: no time passes, the monotonic clock and pending timers stay where they are.
   */
  stepWall(ms: number): void {
    this.wallStep += ms;
  }

  /**
   * A system suspend (or a VM paused) of `ms`: the wall and boot clocks move on, the monotonic clock
   * and pending timers (Node's run on it) stay where they are.
   */
  suspend(ms: number): void {
    this.wallStep += ms;
    this.suspended += ms;
  }

  pendingCount(): number {
    return this.pending.length;
  }
}
