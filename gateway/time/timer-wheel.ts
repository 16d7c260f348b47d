/**
 * Hierarchical timing wheel: one clock timer drives every heartbeat, welfare
 * check, hold-open and escalation timer in the gateway (20,000 devices must
 * not mean 20,000 Node timers).
 *
 * Time is cut into ticks (default 1 s). A timer with deadline d belongs to tick
 * ceil(d / tickMs) and fires when that tick is processed, i.e. once the clock
 * reads at least tick * tickMs: never early, at most one tick late.
 *
 * Levels (Linux-style "cascade on wrap"): level 0 has 256 one-tick slots; levels
 * 1..4 have 64 slots each covering 2^8, 2^14, 2^20, 2^26 ticks. A timer sits in
 * the lowest level whose range covers its distance from the current tick; when
 * the current tick reaches a slot's block it is re-inserted one level down.
 * 2^32 ticks is 136 years at 1 s; anything further (tiny tickMs) is parked in the
 * top level's farthest slot and re-cascaded until it fits.
 *
 * Timers are intrusive (links live in the WheelTimer, preallocated per device),
 * so arm/disarm are O(1) and allocate nothing.
 *
 * Elapsed time, not the wall clock: deadlines are given in wall-clock epoch ms, but a STEP of the
 * wall clock (NTP correcting a box that booted with a wrong time, a clock set by hand) is not time
 * passing. Given a StepSource (the gateway's SteadyClock, whose wall clock takes a step only when
 * asked), the wheel asks for a step at the top of every tick; it adds one to its `shift` (wall =
 * wheel time + shift), so every armed timer keeps the elapsed time it had left and its `deadline`
 * reads on the new wall clock, and reports it (`onStep`) before anything fires, so the owners of
 * journaled times move them at the same moment. Without one, the wheel runs on its clock as is.
 */
import type { Clock, ClockTimer } from "../../core/index.js";
import type { StepSource } from "./steady-clock.js";

const L0_SLOTS = 256;
const LN_SLOTS = 64;
const LEVELS = 5;
/** Ticks covered by one slot of each level. */
const SLOT_TICKS = [1, 2 ** 8, 2 ** 14, 2 ** 20, 2 ** 26] as const;
/** A timer belongs to level L if its distance in ticks is below RANGE[L]. */
const RANGE = [2 ** 8, 2 ** 14, 2 ** 20, 2 ** 26, 2 ** 32] as const;
const MAX_DELTA = 2 ** 32 - 1;
/** Node clamps longer timeouts to 1 ms; we never ask for more than this anyway. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** One intrusive list: a wheel slot, or the batch being fired. */
class Slot {
  head: WheelTimer | null = null;
  tail: WheelTimer | null = null;
  /** -1 for the firing batch (not counted per level). */
  constructor(readonly level: number) {}
}

export class WheelTimer {
  /** @internal */ _prev: WheelTimer | null = null;
  /** @internal */ _next: WheelTimer | null = null;
  /** @internal */ _slot: Slot | null = null;
  /** @internal */ _wheel: TimerWheel | null = null;
  /** @internal Tick the timer fires on (before clamping to the current tick). */
  _tick = 0;
  /** @internal Wheel time (wall clock minus the steps seen before it was armed). */
  _deadline = Number.NaN;

  constructor(
    readonly callback: (timer: WheelTimer) => void,
    readonly owner: unknown = undefined,
  ) {}

  get armed(): boolean {
    return this._slot !== null;
  }

  /** Epoch ms this timer is due at, on the wall clock as it reads now (steps included); NaN if not armed. */
  get deadline(): number {
    return this._slot === null || this._wheel === null ? Number.NaN : this._deadline + this._wheel._shift;
  }
}

export interface TimerWheelOptions {
  /** Resolution; default 1000 ms. */
  tickMs?: number;
  /**
   * Longest single sleep of the clock timer while timers are armed (default 60 s).
   * Node timers run on monotonic time, which stops during a system suspend; a short
   * cap means we notice a wall-clock jump soon after resuming.
   */
  maxSleepMs?: number;
  /** Called when a timer callback throws (after `errors` is incremented). */
  onError?: (err: unknown, timer: WheelTimer) => void;
  /** Asked at every tick for a step of the wall clock to adopt (the clock's own, SteadyClock). */
  steps?: StepSource;
  /**
   * The wall clock stepped by `stepMs` (negative: set back) while the wheel ran. Called once per
   * step, from the wheel's tick before any timer fires; armed timers have already been moved.
   */
  onStep?: (stepMs: number) => void;
  /**
   * Timers fired in one turn of the event loop (default: no limit). Beyond, the rest of the tick's
   * timers fire in the next turns (a clock timer of 0 ms each), in the same order, before any later
   * tick: I/O and promise jobs run in between. A tick with thousands due (5,000 devices lost at
   * once, an aged start's call windows) otherwise made all their alerts, journal records and
   * messages in one turn, every one of them alive until its end (docs/performance.md, "Memory,
   * eighth pass").
   */
  firePerTurn?: number;
}

export class TimerWheel {
  readonly tickMs: number;
  private readonly maxSleepMs: number;
  private readonly onError: ((err: unknown, timer: WheelTimer) => void) | undefined;
  private readonly onStep: ((stepMs: number) => void) | undefined;
  private readonly firePerTurn: number;
  /** Timers fired in this turn (tick() resets it). */
  private firedThisTurn = 0;
  private readonly stepSource: StepSource | undefined;
  /** @internal Sum of the wall-clock steps adopted: wall clock = wheel time + _shift. */
  _shift = 0;
  private stepCount = 0;
  private readonly levels: Slot[][] = [];
  private readonly levelCount = new Array<number>(LEVELS).fill(0);
  private readonly firing = new Slot(-1);
  /** Last processed tick: every timer due at or before it has fired. */
  private current: number;
  private count = 0;
  private processing = false;
  /** hold() .. release(): no clock timer, nothing fires. */
  private held = false;
  private clockTimer: ClockTimer | null = null;
  private wakeTick = Number.POSITIVE_INFINITY;
  private errorCount = 0;
  private readonly onClock = (): void => this.tick();

  constructor(
    private readonly clock: Clock,
    opts: TimerWheelOptions = {},
  ) {
    this.tickMs = opts.tickMs ?? 1000;
    if (!(this.tickMs > 0)) throw new RangeError(`tickMs must be > 0, got ${this.tickMs}`);
    this.maxSleepMs = Math.max(this.tickMs, opts.maxSleepMs ?? 60_000);
    this.onError = opts.onError;
    this.onStep = opts.onStep;
    this.stepSource = opts.steps;
    this.firePerTurn = Math.max(1, opts.firePerTurn ?? Number.POSITIVE_INFINITY);
    for (let l = 0; l < LEVELS; l++) {
      const n = l === 0 ? L0_SLOTS : LN_SLOTS;
      const slots: Slot[] = [];
      for (let i = 0; i < n; i++) slots.push(new Slot(l));
      this.levels.push(slots);
    }
    this.current = Math.floor(clock.now() / this.tickMs);
  }

  /** Wall-clock steps adopted while running. */
  get steps(): number {
    return this.stepCount;
  }

  /** Armed timers. */
  get size(): number {
    return this.count;
  }

  /** Callbacks that threw. */
  get errors(): number {
    return this.errorCount;
  }

  /** (Re)schedules `timer` for `atEpochMs`; a past deadline fires on the next tick. */
  arm(timer: WheelTimer, atEpochMs: number): void {
    if (Number.isNaN(atEpochMs)) throw new RangeError("deadline is NaN");
    if (timer._wheel !== null && timer._wheel !== this) timer._wheel.disarm(timer);
    if (timer._slot !== null) this.unlink(timer);
    else this.count++;
    if (this.count === 1 && !this.processing) {
      // Wheel was idle (no clock timer): the stale tick would make every delta wrong.
      this.current = Math.floor((this.clock.now() - this._shift) / this.tickMs);
    }
    timer._wheel = this;
    const at = atEpochMs - this._shift;
    timer._deadline = at;
    // Infinity would poison the slot arithmetic; it just parks in the overflow slot.
    const t = Math.ceil(Math.min(at, Number.MAX_SAFE_INTEGER) / this.tickMs);
    timer._tick = t;
    // Already due: next tick (not the one being fired, so a self-re-arm cannot spin).
    const wake = this.insert(timer, Math.max(t, this.current + 1));
    if (!this.processing && wake < this.wakeTick) this.sleepUntil(wake);
  }

  armIn(timer: WheelTimer, delayMs: number): void {
    this.arm(timer, this.clock.now() + delayMs);
  }

  /** Returns true if the timer was armed (on this wheel). */
  disarm(timer: WheelTimer): boolean {
    if (timer._slot === null || timer._wheel !== this) return false;
    this.unlink(timer);
    timer._wheel = null;
    this.count--;
    if (this.count === 0 && !this.processing) this.clearClockTimer();
    return true;
  }

  /**
   * Nothing fires until `release()`; timers are armed and disarmed as usual. The start holds the
   * wheel from recovery until the broker listens and the restored state is republished: a restored
   * escalation or call window that fell due while the gateway was down must fire then, through the
   * broker (to operators' persistent sessions and upstream), not into what waits before it exists.
   */
  hold(): void {
    this.held = true;
    this.clearClockTimer();
  }

  /** Ends a `hold()`: what fell due meanwhile fires on the next tick (at once if already past). */
  release(): void {
    if (!this.held) return;
    this.held = false;
    if (this.firing.head !== null && !this.processing) this.fireRestSoon();
    else if (this.count > 0 && !this.processing) this.sleepUntil(this.current + 1);
  }

  /** Disarms everything and clears the clock timer. */
  stop(): void {
    for (const slots of this.levels) for (const slot of slots) this.drop(slot);
    this.drop(this.firing);
    this.levelCount.fill(0);
    this.count = 0;
    this.clearClockTimer();
  }

  // --- internals -------------------------------------------------------------

  private drop(slot: Slot): void {
    let t = slot.head;
    while (t !== null) {
      const next = t._next;
      t._prev = t._next = t._slot = t._wheel = null;
      t = next;
    }
    slot.head = slot.tail = null;
  }

  /**
   * Links `timer` into the slot for tick `t` (t >= current) and returns the earliest
   * tick at which the wheel must wake for it (its own tick, or its level's cascade).
   */
  private insert(timer: WheelTimer, t: number): number {
    let delta = t - this.current;
    if (delta > MAX_DELTA) {
      delta = MAX_DELTA;
      t = this.current + MAX_DELTA;
    }
    let level = 0;
    while (delta >= RANGE[level]!) level++;
    const width = SLOT_TICKS[level]!;
    const n = level === 0 ? L0_SLOTS : LN_SLOTS;
    const slot = this.levels[level]![Math.floor(t / width) % n]!;
    timer._slot = slot;
    // Append, so equal deadlines fire in arm order (the sort is stable).
    timer._next = null;
    timer._prev = slot.tail;
    if (slot.tail !== null) slot.tail._next = timer;
    else slot.head = timer;
    slot.tail = timer;
    this.levelCount[level]!++;
    return level === 0 ? t : (Math.floor(this.current / width) + 1) * width;
  }

  private unlink(timer: WheelTimer): void {
    const slot = timer._slot!;
    if (timer._prev !== null) timer._prev._next = timer._next;
    else slot.head = timer._next;
    if (timer._next !== null) timer._next._prev = timer._prev;
    else slot.tail = timer._prev;
    if (slot.level >= 0) this.levelCount[slot.level]!--;
    timer._prev = timer._next = timer._slot = null;
  }

  private clearClockTimer(): void {
    if (this.clockTimer !== null) this.clock.clearTimeout(this.clockTimer);
    this.clockTimer = null;
    this.wakeTick = Number.POSITIVE_INFINITY;
  }

  /** The rest of a tick's timers (fire() stopped at firePerTurn) in the next turn. */
  private fireRestSoon(): void {
    this.clearClockTimer();
    if (this.held) return;
    // Nothing armed meanwhile can come before them: arm() wakes the wheel only for an earlier tick.
    this.wakeTick = this.current;
    this.clockTimer = this.clock.setTimeout(this.onClock, 0);
  }

  private sleepUntil(tick: number): void {
    this.clearClockTimer();
    // Held (hold()): nothing fires until release() wakes the wheel.
    if (this.held) return;
    const now = this.clock.now() - this._shift;
    const delay = Math.min(Math.max(0, tick * this.tickMs - now), this.maxSleepMs, MAX_TIMEOUT_MS);
    this.wakeTick = Math.min(tick, Math.floor((now + delay) / this.tickMs));
    this.clockTimer = this.clock.setTimeout(this.onClock, delay);
  }

  /** Earliest tick after `current` at which anything can fire or cascade. */
  private nextWake(): number {
    let wake = Number.POSITIVE_INFINITY;
    if (this.levelCount[0]! > 0) {
      const slots = this.levels[0]!;
      for (let t = this.current + 1; t <= this.current + L0_SLOTS; t++) {
        if (slots[t % L0_SLOTS]!.head !== null) {
          wake = t;
          break;
        }
      }
    }
    // Higher levels' cascade points nest, so the lowest non-empty level comes first.
    for (let l = 1; l < LEVELS; l++) {
      if (this.levelCount[l]! > 0) {
        const width = SLOT_TICKS[l]!;
        return Math.min(wake, (Math.floor(this.current / width) + 1) * width);
      }
    }
    return wake;
  }

  private tick(): void {
    this.clockTimer = null;
    this.wakeTick = Number.POSITIVE_INFINITY;
    // A step is adopted here, at the top of the stack: the clock, the wheel's timers and (onStep)
    // every journaled time move together, before anything fires.
    const step = this.stepSource?.takeStep() ?? 0;
    if (step !== 0) {
      this._shift += step;
      this.stepCount++;
    }
    const target = Math.floor((this.clock.now() - this._shift) / this.tickMs);
    this.processing = true;
    this.firedThisTurn = 0;
    let more = false;
    try {
      if (step !== 0) {
        try {
          this.onStep?.(step);
        } catch {
          // The owners' times stay as they were; the wheel's own timers are already right.
          this.errorCount++;
        }
      }
      // The rest of the current tick's timers first, if the last turn stopped at firePerTurn.
      more = this.fireBatch();
      // A clock jump (suspend, NTP step, FakeClock.advance) walks every missed tick
      // in order, skipping straight to the next cascade point when level 0 is empty.
      while (!more && this.current < target && this.count > 0) {
        if (this.levelCount[0] === 0) {
          const next = this.nextWake();
          if (next > target) break;
          this.current = next - 1;
        }
        this.current++;
        this.cascade();
        more = this.fire();
      }
      if (!more && this.current < target) this.current = target;
    } finally {
      this.processing = false;
    }
    if (more) this.fireRestSoon();
    else if (this.count > 0) this.sleepUntil(this.nextWake());
  }

  private cascade(): void {
    const c = this.current;
    let top = 0;
    while (top + 1 < LEVELS && c % SLOT_TICKS[top + 1]! === 0) top++;
    // Top-down, so timers dropped from a high level are seen by the lower levels this tick.
    for (let l = top; l >= 1; l--) {
      const width = SLOT_TICKS[l]!;
      const slot = this.levels[l]![Math.floor(c / width) % LN_SLOTS]!;
      let t = slot.head;
      slot.head = slot.tail = null;
      while (t !== null) {
        const next = t._next;
        this.levelCount[l]!--;
        this.insert(t, Math.max(t._tick, c));
        t = next;
      }
    }
  }

  /** Fires the current tick's timers; true if firePerTurn stopped it with some left (fireBatch). */
  private fire(): boolean {
    const slot = this.levels[0]![this.current % L0_SLOTS]!;
    if (slot.head === null) return false;
    const batch = this.firing;
    batch.head = sortByDeadline(slot.head);
    this.levelCount[0]! -= relink(batch);
    slot.head = slot.tail = null;
    return this.fireBatch();
  }

  /**
   * Fires the batch (the current tick's timers), up to firePerTurn in this turn; true if some are
   * left. They stay armed meanwhile (in the batch): disarm() and arm() take them out as usual.
   */
  private fireBatch(): boolean {
    const batch = this.firing;
    // Pop one at a time: callbacks may disarm or re-arm anything, including batch members.
    while (batch.head !== null) {
      if (this.firedThisTurn >= this.firePerTurn) return true;
      this.firedThisTurn++;
      const timer = batch.head;
      this.unlink(timer);
      timer._wheel = null;
      this.count--;
      try {
        timer.callback(timer);
      } catch (err) {
        this.errorCount++;
        if (this.onError) {
          try {
            this.onError(err, timer);
          } catch {
            // A broken error hook must not stop the wheel either.
          }
        }
      }
    }
    return false;
  }
}

/** Fixes prev/slot pointers after sorting; returns the number of timers. */
function relink(slot: Slot): number {
  let n = 0;
  let prev: WheelTimer | null = null;
  for (let t = slot.head; t !== null; t = t._next) {
    t._prev = prev;
    t._slot = slot;
    prev = t;
    n++;
  }
  slot.tail = prev;
  return n;
}

/** Stable merge sort over `_next` links: no allocation, and O(n) when already sorted. */
function sortByDeadline(head: WheelTimer | null): WheelTimer | null {
  if (head === null || head._next === null) return head;
  let sorted = true;
  for (let t = head; t._next !== null; t = t._next) {
    if (t._next._deadline < t._deadline) {
      sorted = false;
      break;
    }
  }
  if (sorted) return head;
  return mergeSort(head);
}

function mergeSort(head: WheelTimer): WheelTimer {
  if (head._next === null) return head;
  let slow = head;
  let fast: WheelTimer | null = head._next;
  while (fast !== null && fast._next !== null) {
    slow = slow._next!;
    fast = fast._next._next;
  }
  const right = slow._next!;
  slow._next = null;
  let a: WheelTimer | null = mergeSort(head);
  let b: WheelTimer | null = mergeSort(right);
  // Pick the first node, then append; ties keep list order (stable).
  let first: WheelTimer;
  if (b._deadline < a._deadline) {
    first = b;
    b = b._next;
  } else {
    first = a;
    a = a._next;
  }
  let tail = first;
  while (a !== null && b !== null) {
    if (b._deadline < a._deadline) {
      tail._next = b;
      b = b._next;
    } else {
      tail._next = a;
      a = a._next;
    }
    tail = tail._next;
  }
  tail._next = a ?? b;
  return first;
}
