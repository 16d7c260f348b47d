/**
 * The gateway's clock: the system's wall clock, except that a step of it (NTP correcting a box that
 * booted with a wrong time, a clock set by hand: 1 s or more against the monotonic clock) is taken
 * only when the timer wheel adopts it (`takeStep`, at the top of a tick), at the same moment as
 * every journaled time moves by it (gateway/clock-step.ts). Until then the old clock is carried on
 * by elapsed time, so there is no moment in which some times read on the old clock and others on
 * the new one (at most the wheel's longest sleep, a minute).
 *
 * A system suspend (or a VM paused) is no step: the monotonic clock stops during it while the wall
 * clock does not, so it looks like one, but the time passed. The boot clock (CLOCK_BOOTTIME: the
 * monotonic clock plus the time suspended; on Linux /proc/uptime) tells them apart: what it gained
 * on the monotonic clock since the last look is elapsed time, taken at once (timers due during the
 * suspend fire at the wheel's next tick), and only the rest of a jump is a step. Without a boot
 * clock (not Linux, no /proc) a suspend counts as a step, as before.
 */
import { readFileSync } from "node:fs";
import type { Clock, ClockTimer } from "../../core/index.js";

/**
 * A wall clock moving against the monotonic one by at least this much is a step; less (NTP's
 * slewing, reading two clocks a moment apart) is absorbed, and changes nothing visible.
 */
export const STEP_MS = 1000;

/**
 * What the boot clock gained on the monotonic one below this is reading noise (/proc/uptime has
 * 10 ms steps), not a suspend: left to add up with the next.
 */
const SLEEP_MIN_MS = 100;

/** Milliseconds since boot, time suspended included (CLOCK_BOOTTIME); null when it cannot be read. */
export type Boottime = () => number | null;

const UPTIME = "/proc/uptime";

function procUptime(): number | null {
  try {
    // "<seconds since boot> <idle seconds>", 10 ms steps. Not os.uptime(): without /proc it falls
    // back to whole seconds, which would take up to a second of noise for a suspend.
    const s = Number.parseFloat(readFileSync(UPTIME, "latin1"));
    return Number.isFinite(s) ? s * 1000 : null;
  } catch {
    return null;
  }
}

/** The system's boot clock: /proc/uptime where it can be read (Linux), else none. */
export function systemBoottime(): Boottime | null {
  return process.platform === "linux" && procUptime() !== null ? procUptime : null;
}

/** What the timer wheel asks at each tick: the step of the wall clock to adopt now (0: none). */
export interface StepSource {
  takeStep(): number;
}

export class SteadyClock implements Clock, StepSource {
  /** Wall minus monotonic clock, as adopted (time suspended included). */
  private base: number;
  /** Boot minus monotonic clock at the last suspend taken (the time suspended since boot). */
  private slept: number;
  /** The jump `now()` last looked at the boot clock for (0 after a tick): looked at once each. */
  private looked = 0;

  constructor(
    readonly raw: Clock,
    /** The boot clock; null: none (a suspend then counts as a step). */
    private readonly boottime: Boottime | null = null,
    /** A suspend taken as time passed (for the log), with how long it was. */
    private readonly onSuspend?: (ms: number) => void,
  ) {
    this.base = raw.now() - raw.monotonic();
    this.slept = this.sleptNow() ?? 0;
  }

  /**
   * The system's wall clock as it is, unless it moved against the monotonic one by a step not yet
   * adopted: then the old clock, carried on by elapsed time (other processes, devices' `ts` and
   * logs read the same clock as the gateway otherwise, to the millisecond).
   */
  now(): number {
    return this.read(this.raw.now());
  }

  /**
   * An absolute time given from outside (an operator's `until`: on the system's wall clock, as
   * every other party reads it) as this clock reads it: until a step is adopted, on the old clock,
   * so that the adoption moves it onto the new one with every other time, once. Taken as it is, a
   * time given between a step and its adoption was moved by the step a second time.
   */
  fromWall(wallMs: number): number {
    const wall = this.raw.now();
    return wallMs - (wall - this.read(wall));
  }

  private read(wall: number): number {
    let steady = this.raw.monotonic() + this.base;
    if (wall - steady < STEP_MS && steady - wall < STEP_MS) return wall;
    // A jump: a suspend just ended, maybe (then the wall clock is right at once, not only from
    // the wheel's next tick). The boot clock is read once per jump, not on every call after a step.
    if (this.boottime !== null && Math.abs(wall - steady - this.looked) >= SLEEP_MIN_MS) {
      this.wake();
      steady = this.raw.monotonic() + this.base;
      this.looked = wall - steady;
      if (wall - steady < STEP_MS && steady - wall < STEP_MS) return wall;
    }
    return Math.floor(steady);
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
    this.wake();
    this.looked = 0;
    const offset = this.raw.now() - this.raw.monotonic();
    const step = offset - this.base;
    this.base = offset;
    return step >= STEP_MS || step <= -STEP_MS ? Math.round(step) : 0;
  }

  private sleptNow(): number | null {
    const boot = this.boottime?.() ?? null;
    return boot === null ? null : boot - this.raw.monotonic();
  }

  /** Time suspended since the last look is time passed: the clock takes it as such. */
  private wake(): void {
    const slept = this.sleptNow();
    if (slept === null || slept - this.slept < SLEEP_MIN_MS) return;
    const ms = slept - this.slept;
    this.slept = slept;
    this.base += ms;
    this.onSuspend?.(Math.round(ms));
  }
}
