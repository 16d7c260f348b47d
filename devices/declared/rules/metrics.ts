/**
 * What a declared model reports as metrics (the points marked `metric`, each bitfield flag by
 * name, whether each filtered point is suspect, whether the device tests itself) and each
 * reading's quality.
 */
import type { MetricValue } from "../../../core/index.js";
import type { DeclaredSample } from "../sample.js";
import type { DeclaredProfileDoc } from "../schema.js";
import type { DeclaredState } from "../state.js";

/** The points (Modbus) or fields (MQTT) marked `metric`. */
export function metricPointsOf(doc: DeclaredProfileDoc) {
  return doc.transport === "modbus"
    ? doc.modbus!.points.filter((p) => p.metric).map((p) => ({ name: p.name, unit: p.unit, bits: p.bits }))
    : doc.mqtt!.fields.filter((f) => f.metric).map((f) => ({ name: f.name, unit: f.unit, bits: undefined }));
}

export function metricsOf(
  doc: DeclaredProfileDoc,
  metricPoints: ReturnType<typeof metricPointsOf>,
  spikeOf: ReadonlyMap<string, number>,
) {
  return (s: DeclaredSample, st: DeclaredState): Record<string, MetricValue> => {
    const out: Record<string, MetricValue> = {};
    for (const p of metricPoints) {
      const v = s.v[p.name];
      if (v === undefined) continue;
      if (typeof v === "object") {
        for (const [flag, on] of Object.entries(v as Record<string, boolean>)) out[flag] = { value: on };
      } else out[p.name] = p.unit ? { value: v, unit: p.unit } : { value: v };
    }
    for (const [point, i] of spikeOf) out[`${point}Suspect`] = { value: st.spikes[i]!.suspect };
    if (doc.testWhile) out.testing = { value: st.testing };
    return out;
  };
}

// Readings during the device's test, and a jump not yet believed, are flagged, not reported as real.
export const quality = (_s: DeclaredSample, st: DeclaredState) =>
  st.testing ? "self-test" : st.doubted || st.spikes.some((sp) => sp.suspect) ? "suspect" : null;
