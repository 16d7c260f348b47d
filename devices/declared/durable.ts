/**
 * The journaled rule state of a model declared in YAML (rules/journaled.ts): what its rules remember across
 * a restart, as one flat list a version reads (docs/durability.md "Record kinds and layouts").
 */
import type { DurableRuleState, DurableValue } from "../profile.js";
import type { DeclaredState } from "./state.js";

/**
 * A declared model's journaled rule state. Version 4: `lastOf` of these fields in this order (null:
 * none yet; a field's value is a primitive), then whether each alarm is active, in the profile's
 * order (null for an alarm not `kept`: every message decides it), then for each code with a
 * `holdWhile`, in the codes' order, whether its condition was active and whether its hold held
 * (a raised GD-2 leak under the threshold, held by lel not yet under 5 %LEL, stays so across a
 * restart, as gd2.ts's journaled `leak` does), then for each code with a `peak` or `command`, in
 * the codes' order, its incident: whether it was on, its peak and suspect peak (null: none) and
 * whether the command was sent (a restart mid-incident keeps the peak and sends the command no
 * second time, as gd2.ts's journaled peak and shutOffSent). Version 3 (before 0.13.47): no
 * incidents, which start over. Version 2 (before 0.13.46): fields and alarms, the holds start
 * released. Version 1 (before 2026-12-06, twenty-sixth session): the fields only; read
 * as such, the alarms start inactive, as they did then.
 */
export function declaredDurable(
  fields: readonly string[],
  kept: readonly boolean[],
  holds: readonly number[],
  incidents: readonly number[],
): DurableRuleState<DeclaredState> {
  const value = (st: DeclaredState, n: string): DurableValue => {
    const v = st.lastOf[n];
    return v === undefined || typeof v === "object" ? null : v;
  };
  const alarmCount = kept.length;
  const v2Length = fields.length + alarmCount;
  const v3Length = v2Length + 2 * holds.length;
  const length = v3Length + 4 * incidents.length;
  const alarm = (st: DeclaredState, i: number): boolean | null =>
    kept[i] ? (st.alarms[i]?.active ?? false) : null;
  const hold = (st: DeclaredState, j: number): boolean => {
    const h = st.holding[holds[Math.floor(j / 2)]!]!;
    return j % 2 === 0 ? h.was : h.hold;
  };
  const nanAsNull = (v: number): number | null => (Number.isNaN(v) ? null : v);
  const incidentValue = (st: DeclaredState, j: number): DurableValue => {
    const inc = st.incidents[incidents[Math.floor(j / 4)]!]!;
    switch (j % 4) {
      case 0:
        return inc.on;
      case 1:
        return nanAsNull(inc.peak);
      case 2:
        return nanAsNull(inc.suspectPeak);
      default:
        return inc.sent;
    }
  };
  return {
    version: 4,
    save(st) {
      const out: DurableValue[] = fields.map((n) => value(st, n));
      for (let i = 0; i < alarmCount; i++) out.push(alarm(st, i));
      for (let j = 0; j < 2 * holds.length; j++) out.push(hold(st, j));
      for (let j = 0; j < 4 * incidents.length; j++) out.push(incidentValue(st, j));
      return out;
    },
    same(st, saved) {
      if (saved.length !== length) return false;
      for (let i = 0; i < fields.length; i++) if (saved[i] !== value(st, fields[i] as string)) return false;
      for (let i = 0; i < alarmCount; i++) if (saved[fields.length + i] !== alarm(st, i)) return false;
      for (let j = 0; j < 2 * holds.length; j++) if (saved[v2Length + j] !== hold(st, j)) return false;
      for (let j = 0; j < 4 * incidents.length; j++)
        if (saved[v3Length + j] !== incidentValue(st, j)) return false;
      return true;
    },
    restore(st, saved, _now, version = 4) {
      // Another list of fields or alarms (the profile file changed): nothing is known of these.
      const expected =
        version === 1 ? fields.length : version === 2 ? v2Length : version === 3 ? v3Length : length;
      if (saved.length !== expected) return;
      fields.forEach((n, i) => {
        const v = saved[i];
        if (typeof v === "number" || typeof v === "string" || typeof v === "boolean") st.lastOf[n] = v;
      });
      if (version === 1) return;
      for (let i = 0; i < alarmCount; i++) {
        const v = saved[fields.length + i];
        const as = st.alarms[i];
        if (as !== undefined && kept[i] && typeof v === "boolean") as.active = v;
      }
      if (version === 2) return;
      holds.forEach((k, j) => {
        const was = saved[v2Length + 2 * j];
        const held = saved[v2Length + 2 * j + 1];
        const h = st.holding[k];
        if (h === undefined || typeof was !== "boolean" || typeof held !== "boolean") return;
        h.was = was;
        h.hold = held;
      });
      if (version === 3) return;
      incidents.forEach((k, j) => {
        const [on, peak, suspectPeak, sent] = saved.slice(v3Length + 4 * j, v3Length + 4 * j + 4);
        const inc = st.incidents[k];
        if (inc === undefined || typeof on !== "boolean" || typeof sent !== "boolean") return;
        inc.on = on;
        inc.sent = sent;
        if (typeof peak === "number") inc.peak = peak;
        if (typeof suspectPeak === "number") inc.suspectPeak = suspectPeak;
      });
    },
  };
}
