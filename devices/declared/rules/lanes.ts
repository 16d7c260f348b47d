/**
 * Which lane a message takes (P1, alert, telemetry), decided before the rules run: lanes reorder,
 * so a message that may raise or clear an alert must not wait behind telemetry. Thresholds and
 * holds keep the lane's own memory (`laneHeld`), since `active` is only set later by the rules.
 */
import { LANE_ALERT, LANE_P1, LANE_TELEMETRY, type LaneId } from "../../../core/index.js";
import type { DeclaredSample, DeclaredSettings } from "../sample.js";
import type { DeclaredProfileDoc } from "../schema.js";
import type { DeclaredState } from "../state.js";
import { type Alarm, type Codes, single } from "./codes.js";
import { bitOf, holds, isThreshold, raw } from "./conditions.js";
import type { Holds } from "./hold.js";
import type { Limits } from "./limits.js";
import type { Unreliable } from "./unreliable.js";

export function lanesOf(
  doc: DeclaredProfileDoc,
  { byCode, groupOf, holdOf }: Codes,
  { resolve, deadbandOf }: Limits,
  { doubtful, unreliableSources }: Unreliable,
  { holdHolds }: Holds,
  blankState: DeclaredState,
  bitfields: readonly string[],
) {
  const alarms = doc.alarms;
  const thresholds = alarms.flatMap((a, i) => (isThreshold(a) ? [i] : []));
  const noSettings: DeclaredSettings = { params: {} };
  /**
   * For the lane: whether an `all:` alarm may hold with this sample (its parts whose point it
   * carries hold, and each code it names holds in the state or is raised by this sample); null: it
   * carries none of them, or not an `all:` alarm. Without a state (tests), a named code may hold.
   */
  const allHolds = (a: Alarm, s: DeclaredSample, st?: DeclaredState): boolean | null => {
    if (!("all" in a.when)) return null;
    let present = false;
    for (const c of a.when.all) {
      if (c.alarm !== undefined) {
        if (st === undefined) continue;
        const k = groupOf.get(c.alarm)!;
        const on =
          (holdOf[k] !== null && st.holding[k]!.was) ||
          byCode
            .get(c.alarm)!
            .some((j) => st.alarms[j]!.active || st.alarms[j]!.laneHeld || raw(alarms[j]!, s) === true);
        if (!on) return false;
      } else if (s.v[c.point!] !== undefined) {
        present = true;
        if (holds(c, s) !== true) return false;
      }
    }
    return present ? true : null;
  };
  /**
   * The lane threshold alarms ask for, as the rules would evaluate them (the device's settings,
   * its reads): beyond the limit or not yet back across the deadband, the alarm's lane (P1 for a
   * P1 one); crossing back, at least the alert lane (a clear must not wait behind telemetry).
   * Without a state (tests), the defaults and no memory.
   */
  const thresholdLane = (s: DeclaredSample, st?: DeclaredState, settings?: DeclaredSettings): LaneId => {
    if (thresholds.length === 0) return LANE_TELEMETRY;
    // The rules leave thresholds alone while the device tests itself.
    if (doc.testWhile && bitOf(s, doc.testWhile.point, doc.testWhile.bit)) return LANE_TELEMETRY;
    const state = st ?? blankState;
    let lane: LaneId = LANE_TELEMETRY;
    for (const i of thresholds) {
      const a = alarms[i]!;
      const w = single(a)!;
      const v = s.v[w.point];
      if (typeof v !== "number" || !Number.isFinite(v)) continue;
      // Not believed: the rules hold its alarm, and the lane's memory too.
      if (doubtful(s, w.point, st)) continue;
      const high = w.above !== undefined;
      const limit = resolve((high ? w.above : w.below)!, s, state, settings ?? noSettings);
      if (!Number.isFinite(limit)) continue;
      const as = state.alarms[i]!;
      const held = as.active || as.laneHeld;
      const deadband = deadbandOf(w, limit, s, state, settings ?? noSettings);
      const back = high ? limit - deadband : limit + deadband;
      // As ThresholdState.update: an inclusive limit is crossed at the limit and held at its way back.
      const on = w.inclusive
        ? high
          ? v >= limit || (held && v >= back)
          : v <= limit || (held && v <= back)
        : high
          ? v > limit || (held && v > back)
          : v < limit || (held && v < back);
      if (st !== undefined) as.laneHeld = on;
      if (on && a.priority === 1) lane = LANE_P1;
      else if ((on || held) && lane === LANE_TELEMETRY) lane = LANE_ALERT;
    }
    return lane;
  };

  /**
   * The lane a raised alert's `holdWhile` asks for: still holding, the alert's own (P1 for a P1
   * one); no longer, at least the alert lane (its clear must not wait behind telemetry). Without a
   * state (tests), or before the alert is raised, none.
   */
  const holdLane = (s: DeclaredSample, st?: DeclaredState, settings?: DeclaredSettings): LaneId => {
    let lane: LaneId = LANE_TELEMETRY;
    if (st === undefined) return lane;
    holdOf.forEach((h, k) => {
      if (h === null || !st.holding[k]!.was) return;
      const c = holdHolds(h, s, st, settings ?? noSettings);
      if (c === null) return;
      if (c && h.priority === 1) lane = LANE_P1;
      else if (lane === LANE_TELEMETRY) lane = LANE_ALERT;
    });
    return lane;
  };

  return {
    /** A Modbus poll's lane: what it may raise, or what changed since the previous poll. */
    laneOf(
      s: DeclaredSample,
      previous: DeclaredSample | null,
      st?: DeclaredState,
      settings?: DeclaredSettings,
    ): LaneId {
      // First: it keeps the lane's memory of every threshold, whatever the other alarms say.
      const threshold = thresholdLane(s, st, settings);
      if (threshold === LANE_P1) return LANE_P1;
      const hold = holdLane(s, st, settings);
      if (hold === LANE_P1) return LANE_P1;
      let changed = previous === null || threshold === LANE_ALERT || hold === LANE_ALERT;
      for (const [i, a] of alarms.entries()) {
        const r = raw(a, s) ?? allHolds(a, s, st);
        if (r === true && a.priority === 1) return LANE_P1;
        if ("all" in a.when) {
          // A part changed, or a raised one no longer holds (its clear).
          const was = previous;
          if (was !== null && a.when.all.some((c) => c.point !== undefined && holds(c, s) !== holds(c, was)))
            changed = true;
          if (r === false && st?.alarms[i]?.active) changed = true;
          continue;
        }
        if (r !== null && previous !== null && r !== raw(a, previous)) changed = true;
      }
      // A sensor named faulty, or no longer: its alarms hold, or are judged again.
      if (previous !== null) for (const n of unreliableSources) if (s.v[n] !== previous.v[n]) changed = true;
      if (previous !== null)
        for (const b of bitfields)
          for (const [flag, v] of Object.entries(s.v[b] as Record<string, boolean>))
            if ((previous.v[b] as Record<string, boolean>)[flag] !== v) changed = true;
      return changed ? LANE_ALERT : LANE_TELEMETRY;
    },

    /** An MQTT message's lane: no previous message to compare with, what it may raise or clear. */
    laneNow(s: DeclaredSample, st?: DeclaredState, settings?: DeclaredSettings): LaneId {
      const threshold = thresholdLane(s, st, settings);
      if (threshold === LANE_P1) return LANE_P1;
      const hold = holdLane(s, st, settings);
      if (hold === LANE_P1) return LANE_P1;
      let any = threshold === LANE_ALERT || hold === LANE_ALERT;
      for (const [i, a] of alarms.entries()) {
        const r = raw(a, s) ?? allHolds(a, s, st);
        // An `all:` alarm's clear must not wait behind telemetry.
        if (r === false && "all" in a.when && st?.alarms[i]?.active) any = true;
        if (r !== true) continue;
        if (a.priority === 1) return LANE_P1;
        any = true;
      }
      return any ? LANE_ALERT : LANE_TELEMETRY;
    },
  };
}
