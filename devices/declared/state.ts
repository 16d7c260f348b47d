/**
 * What the rules of a model declared in YAML remember between messages (rules/ runs them,
 * durable.ts journals part of it).
 */
import type { PointValue } from "../modbus-decode.js";
import type { ThresholdState } from "../threshold.js";

export interface AlarmState {
  threshold: ThresholdState | null;
  limit: number;
  /** The deadband the threshold was built with (`clearAt` moves it with the limit). */
  deadband: number;
  /** Own condition (before `unless`) as last evaluated (with its deadband). */
  active: boolean;
  /** Beyond the limit itself (no deadband; a bit or equality: `active`), and since when (0: not). */
  onset: boolean;
  since: number;
  /**
   * The lane's own memory: the last message laned was beyond the limit or not yet back. The rules
   * run later (lanes reorder), so `active` alone would miss a clear right behind its raise.
   */
  laneHeld: boolean;
  /**
   * An `all:` alarm's parts: whether each holds (a point's part keeps its value while a message
   * lacks the point), since when (0: not), and whether its point has had a value since the start.
   */
  parts: { held: boolean; since: number; known: boolean }[];
}

export interface SpikeState {
  good: number;
  /**
   * When the previous sample was read (`RuleContext.readAt`), one under the point's
   * `unreliableWhen` not counted (a gap); NaN before the first.
   */
  lastAt: number;
  /** Since when (`readAt`) a jump is suspect; NaN when none. */
  suspectSince: number;
  suspect: boolean;
}

export interface DeclaredState {
  alarms: AlarmState[];
  spikes: SpikeState[];
  testing: boolean;
  /** A point of the last sample was not believed (its `unreliableWhen` held): quality `suspect`. */
  doubted: boolean;
  /** `modbus.reads` values by name (absent until read; the last read value stays when a read fails). */
  reads: Record<string, number>;
  /**
   * The last value of each field an MQTT `unreliableWhen` names (absent until one arrives): a
   * message without that field (a partial message) is judged by the last one that had it.
   */
  lastOf: Record<string, PointValue | boolean>;
  /** Since when each code an `all:` part names has held (absent: not); not journaled, as gd2.ts's leakSince. */
  codeSince: Record<string, number>;
  /**
   * Per code (in the order of the codes' first alarms), its `holdWhile`: whether the code's
   * condition was reported active after the last message (`was`), whether the hold's condition
   * held at the last message carrying its point, believed (`hold`), and whether the hold alone
   * holds the alert now (`on`). Codes without one: all false.
   */
  holding: { was: boolean; hold: boolean; on: boolean }[];
  /**
   * Per code (the codes' order), its incident for a `peak` or `command`: whether the code's
   * condition was reported active (`on`), the highest believed value of the peak's point since it
   * began (NaN: none), the highest one not believed from a `suspectFrom` message (NaN: none), and
   * whether the automatic command was sent (as gd2.ts's peak, alarmPeak and shutOffSent).
   */
  incidents: { on: boolean; peak: number; suspectPeak: number; sent: boolean }[];
  /** The last value of each point a command's `unless` reads (not journaled, as gd2.ts's valve). */
  seen: Record<string, PointValue | boolean>;
}
