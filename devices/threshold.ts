/**
 * An analog limit with a deadband (ISA-18.2 / EEMUA 191 alarm hysteresis):
 * active when the value crosses the limit, inactive only once it is back by
 * more than the deadband, so a reading that hovers on the limit does not
 * flap. Time-based filtering (on/off delays) is the engine's job
 * (`ConditionOptions.onDelayMs` / `offDelayMs`); this class is only the
 * value test, one small object per device and limit, no allocation per update.
 *
 *   const overheat = new ThresholdState({ above: 45, deadband: 2 });   // °C
 *   ctx.condition("OVERHEAT", overheat.update(celsius), { priority: 3, onDelayMs: 30_000, offDelayMs: 60_000 });
 *
 *   const low = new ThresholdState({ below: 0.15, deadband: 0.02 });   // MPa
 */
import type { DurableRuleState, DurableValue } from "./profile.js";

export type ThresholdSpec = (
  | { above: number; below?: undefined; deadband: number }
  | { below: number; above?: undefined; deadband: number }
) & {
  /**
   * The limit itself counts as crossed, and the way back must pass the
   * deadband's end ("at or above 10, clears under 5", GD-2 datasheet).
   * Default false: strictly beyond the limit, back at the deadband's end.
   */
  inclusive?: boolean;
};

export class ThresholdState {
  private high: boolean;
  private inclusive: boolean;
  private limit: number;
  private back: number;
  /** Whether the limit is currently crossed (with hysteresis). */
  active = false;
  /** Last value seen (NaN before the first). */
  value = Number.NaN;

  constructor(spec: ThresholdSpec) {
    this.high = false;
    this.inclusive = false;
    this.limit = 0;
    this.back = 0;
    this.setSpec(spec);
  }

  /**
   * New limits (a reload changed a setting), keeping whether the limit is
   * crossed: the next reading decides against the new limits.
   */
  setSpec(spec: ThresholdSpec): this {
    if (!(spec.deadband >= 0)) throw new RangeError(`deadband must be >= 0, got ${spec.deadband}`);
    const limit = spec.above ?? spec.below;
    if (!Number.isFinite(limit)) throw new RangeError("threshold limit must be a finite number");
    this.inclusive = spec.inclusive === true;
    this.high = spec.above !== undefined;
    this.limit = limit;
    this.back = this.high ? limit - spec.deadband : limit + spec.deadband;
    return this;
  }

  /**
   * Feeds one reading; returns whether the limit is crossed. A non-finite
   * value (sensor fault, NaN from a bad register) changes nothing: the
   * detector's fault is a separate alert, not a return to normal.
   */
  update(value: number): boolean {
    if (!Number.isFinite(value)) return this.active;
    this.value = value;
    if (this.inclusive) {
      if (this.high ? value >= this.limit : value <= this.limit) this.active = true;
      else if (this.high ? value < this.back : value > this.back) this.active = false;
    } else if (this.high ? value > this.limit : value < this.limit) this.active = true;
    else if (this.high ? value <= this.back : value >= this.back) this.active = false;
    return this.active;
  }

  /**
   * Whether the last value is beyond the limit itself, the deadband left out: what an
   * on-delay times (ISA-18.2: the deadband is the way back of a raised alarm, not part of
   * its onset). False before the first value.
   */
  get beyond(): boolean {
    const v = this.value;
    if (Number.isNaN(v)) return false;
    if (this.inclusive) return this.high ? v >= this.limit : v <= this.limit;
    return this.high ? v > this.limit : v < this.limit;
  }

  reset(): void {
    this.active = false;
    this.value = Number.NaN;
  }
}

/**
 * A model's thresholds as durable rule state (`profile.durable`): whether each is crossed, so that
 * after a restart a reading inside the deadband holds a restored alert until the clear point, as
 * it would have without the restart. `at(st, i)` gives the i-th of `count` thresholds (null: none
 * yet); read without allocating, as `same` runs after every message.
 */
export function thresholdsDurable<State>(
  count: number,
  at: (st: State, i: number) => ThresholdState | null,
): DurableRuleState<State> {
  return {
    version: 1,
    save(st) {
      const out: DurableValue[] = [];
      for (let i = 0; i < count; i++) out.push(at(st, i)?.active ?? null);
      return out;
    },
    same(st, saved) {
      for (let i = 0; i < count; i++) if (saved[i] !== (at(st, i)?.active ?? null)) return false;
      return true;
    },
    restore(st, saved) {
      for (let i = 0; i < count; i++) {
        const t = at(st, i);
        const v = saved[i];
        if (t !== null && typeof v === "boolean") t.active = v;
      }
    },
  };
}
