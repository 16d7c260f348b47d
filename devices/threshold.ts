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

export type ThresholdSpec =
  | { above: number; below?: undefined; deadband: number }
  | { below: number; above?: undefined; deadband: number };

export class ThresholdState {
  private readonly high: boolean;
  private readonly limit: number;
  private readonly back: number;
  /** Whether the limit is currently crossed (with hysteresis). */
  active = false;
  /** Last value seen (NaN before the first). */
  value = Number.NaN;

  constructor(spec: ThresholdSpec) {
    if (!(spec.deadband >= 0)) throw new RangeError(`deadband must be >= 0, got ${spec.deadband}`);
    if (spec.above !== undefined) {
      this.high = true;
      this.limit = spec.above;
      this.back = spec.above - spec.deadband;
    } else {
      this.high = false;
      this.limit = spec.below;
      this.back = spec.below + spec.deadband;
    }
    if (!Number.isFinite(this.limit)) throw new RangeError("threshold limit must be a finite number");
  }

  /**
   * Feeds one reading; returns whether the limit is crossed. A non-finite
   * value (sensor fault, NaN from a bad register) changes nothing: the
   * detector's fault is a separate alert, not a return to normal.
   */
  update(value: number): boolean {
    if (!Number.isFinite(value)) return this.active;
    this.value = value;
    if (this.high) {
      if (value > this.limit) this.active = true;
      else if (value <= this.back) this.active = false;
    } else if (value < this.limit) this.active = true;
    else if (value >= this.back) this.active = false;
    return this.active;
  }

  reset(): void {
    this.active = false;
    this.value = Number.NaN;
  }
}
