/**
 * `unreliableWhen`: a point not believed while another holds one of the given values. Its alarms
 * hold (neither raised nor cleared), its readings are flagged suspect.
 */
import type { PointValue } from "../../modbus-decode.js";
import type { DeclaredSample } from "../sample.js";
import type { DeclaredProfileDoc } from "../schema.js";
import type { DeclaredState } from "../state.js";

export type Unreliable = ReturnType<typeof unreliableOf>;

export function unreliableOf(doc: DeclaredProfileDoc) {
  // An enum's register values stand for their names, which is what the enum decodes to.
  const unreliable = new Map<string, { point: string; values: Set<PointValue | boolean> }>();
  for (const p of doc.modbus?.points ?? []) {
    const u = p.unreliableWhen;
    if (!u) continue;
    const enumValues = doc.modbus!.points.find((o) => o.name === u.point)?.values;
    const values = u.oneOf.map((v) => (enumValues && typeof v === "number" ? enumValues[String(v)]! : v));
    unreliable.set(p.name, { point: u.point, values: new Set(values) });
  }
  for (const f of doc.mqtt?.fields ?? [])
    if (f.unreliableWhen)
      unreliable.set(f.name, { point: f.unreliableWhen.point, values: new Set(f.unreliableWhen.oneOf) });
  /** The points that may not be believed. */
  const unreliablePoints = [...unreliable.keys()];
  /** The fault fields that say so (their last value is kept, and journaled). */
  const unreliableSources = [...new Set([...unreliable.values()].map((u) => u.point))];
  /**
   * Whether a point is not believed: the fault field's value in this sample, else (an MQTT message
   * without it) its last one (`lastOf`; none without a state: the lane of a test).
   */
  const doubtful = (s: DeclaredSample, point: string, st?: DeclaredState): boolean => {
    const u = unreliable.get(point);
    if (u === undefined) return false;
    return u.values.has((s.v[u.point] ?? st?.lastOf[u.point]) as PointValue);
  };
  return { unreliablePoints, unreliableSources, doubtful };
}
