/**
 * Everything of a declared profile but its transport: metrics, lanes, rules, suppression, the
 * journaled state. Built from one module per concern (this folder); `rules` runs them in order.
 */
import type { z } from "zod";
import type { DeviceSettings, RuleContext } from "../../profile.js";
import { declaredConfig } from "../config.js";
import type { DeclaredSample, DeclaredSettings } from "../sample.js";
import type { DeclaredProfileDoc } from "../schema.js";
import type { DeclaredState } from "../state.js";
import { allAlarmsOf } from "./all-alarms.js";
import { codesOf } from "./codes.js";
import { bitOf } from "./conditions.js";
import { alertSpecsOf } from "./describe.js";
import { ownConditionsOf } from "./evaluate.js";
import { holdsOf } from "./hold.js";
import { incidentOf } from "./incident.js";
import { initialStateOf } from "./initial-state.js";
import { journaledOf } from "./journaled.js";
import { lanesOf } from "./lanes.js";
import { limitsOf } from "./limits.js";
import { metricPointsOf, metricsOf, quality } from "./metrics.js";
import { observerOf } from "./observe.js";
import { reporterOf } from "./report.js";
import { spikeFilterOf, spikeIndex } from "./spikes.js";
import { unreliableOf } from "./unreliable.js";

export function rulesCore(doc: DeclaredProfileDoc) {
  const codes = codesOf(doc.alarms);
  const limits = limitsOf(doc);
  const unreliable = unreliableOf(doc);
  const initialState = initialStateOf(doc, codes.groups);
  // A state for the lane of a message without one (tests): the defaults and no memory.
  const blankState = initialState();
  const holds = holdsOf(codes, limits, unreliable, blankState);
  const metricPoints = metricPointsOf(doc);
  const bitfields = metricPoints.filter((p) => p.bits).map((p) => p.name);
  const spikeOf = spikeIndex(doc);
  const lanes = lanesOf(doc, codes, limits, unreliable, holds, blankState, bitfields);
  const observe = observerOf(doc, codes, unreliable);
  const filterSpikes = spikeFilterOf(doc, limits, unreliable);
  const ownConditions = ownConditionsOf(doc, limits, unreliable, spikeOf);
  const allAlarms = allAlarmsOf(doc, codes, unreliable);
  const report = reporterOf(doc, codes, incidentOf(doc, codes, unreliable));
  return {
    model: doc.model,
    label: doc.model,
    simulator: "(described as data: no emulator of its own)",
    config: declaredConfig,
    settings: (c: z.output<z.ZodObject<typeof declaredConfig>>): DeclaredSettings => ({ params: c.settings }),
    alerts: alertSpecsOf(doc.alarms),
    lostPriority: doc.lostPriority,
    deviceTime: (s: DeclaredSample) => s.ts,
    isActivity: (s: DeclaredSample): boolean => {
      const w = doc.activityWhen;
      if (w === undefined) return false;
      return w.bit !== undefined ? bitOf(s, w.point, w.bit) : s.v[w.point] === w.equals;
    },
    suppressed: (s: DeclaredSample): false | "test" | "maintenance" => {
      const w = doc.suppressWhen;
      if (w === undefined) return false;
      return (w.bit !== undefined ? bitOf(s, w.point, w.bit) : s.v[w.point] === w.equals) ? w.as : false;
    },
    laneOf: lanes.laneOf,
    laneNow: lanes.laneNow,
    metrics: metricsOf(doc, metricPoints, spikeOf),
    quality,
    initialState,
    shiftTimes: (st: DeclaredState, ms: number) => {
      for (const a of st.alarms) if (a.since !== 0) a.since += ms;
    },
    ...journaledOf(doc, codes, unreliable),

    rules(
      s: DeclaredSample,
      st: DeclaredState,
      settings: DeviceSettings & DeclaredSettings,
      ctx: RuleContext,
    ): void {
      observe(s, st, ctx);
      filterSpikes(s, st, settings, ctx);
      // Own conditions first (`unless` reads another alarm's), values held while not believable.
      const evaluated = ownConditions(s, st, settings, ctx);
      // Then the codes' holds, which read whether the code's own alarms still hold.
      holds.updateHolds(s, st, settings);
      // Then the `all:` alarms, which read the codes (and holds) they name.
      allAlarms(s, st, ctx, evaluated);
      report(s, st, settings, ctx, evaluated);
    },
  };
}
