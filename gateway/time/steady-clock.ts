/**
 * The gateway's clock: the system's wall clock, except that a step of it (NTP correcting a box that
 * booted with a wrong time, a clock set by hand: 1 s or more against the monotonic clock) is taken
 * only when the timer wheel adopts it (`takeStep`, at the top of a tick), at the same moment as
 * every journaled time moves by it (gateway/clock-step.ts). Until then the old clock is carried on
 * by elapsed time, so there is no moment in which some times read on the old clock and others on
 * the new one (at most the wheel's longest sleep, a minute).
 */
import type { Clock, ClockTimer } from "../../core/index.js";

/**
 * A wall clock moving against the monotonic one by at least this much is a step; less (NTP's
 * slewing, reading two clocks a moment apart) is absorbed, and changes nothing visible.
 */
export const STEP_MS = 1000;

/** What the timer wheel asks at each tick: the step of the wall clock to adopt now (0: none). */
export interface StepSource {
  takeStep(): number;
}

export class SteadyClock implements Clock, StepSource {
  /** Wall minus monotonic clock, as adopted. */
  private base: number;

  constructor(readonly raw: Clock) {
    this.base = raw.now() - raw.monotonic();
  }

  /**
   * The system's wall clock as it is, unless it moved against the monotonic one by a step not yet
   * adopted: then the old clock, carried on by elapsed time (other processes, devices' `ts` and
   * logs read the same clock as the gateway otherwise, to the millisecond).
   */
  now(): number {
    const wall = this.raw.now();
    const steady = this.raw.monotonic() + this.base;
    return wall - steady < STEP_MS && steady - wall < STEP_MS ? wall : Math.floor(steady);
  }

  monotonic(): number {
    return this.raw.monotonic();
  }

  setTimeout(fn: () => void, ms: number): ClockTimer {
    return this.raw.setTimeout(fn, ms);
  }

  clearTimeout(timer: ClockTimer): void {
    this.raw.clearTimeout(timer);
  }

  takeStep(): number {
    const offset = this.raw.now() - this.raw.monotonic();
    const step = offset - this.base;
    this.base = offset;
    return step >= STEP_MS || step <= -STEP_MS ? Math.round(step) : 0;
  }
}
