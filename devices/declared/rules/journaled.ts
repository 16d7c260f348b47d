/**
 * Which parts of a declared model's rule state are journaled (durable.ts lays them out): the last
 * value of each `unreliableWhen` field (a fault flag a partial message does not carry; after a
 * restart, a reading the device called unreliable stays so), whether each kept alarm is active (a
 * restored alert inside its deadband holds until its clear point, and one whose optional field a
 * message leaves out stays as it was), each code's hold and each code's incident.
 */
import type { DurableRuleState } from "../../profile.js";
import { declaredDurable } from "../durable.js";
import type { DeclaredProfileDoc } from "../schema.js";
import type { DeclaredState } from "../state.js";
import { type Codes, single } from "./codes.js";
import { isThreshold } from "./conditions.js";
import type { Unreliable } from "./unreliable.js";

export function journaledOf(
  doc: DeclaredProfileDoc,
  { groups, holdOf, peakOf, commandOf }: Codes,
  { unreliableSources }: Unreliable,
): { durable: DurableRuleState<DeclaredState> } | Record<string, never> {
  const alarms = doc.alarms;
  // The alarms whose state a message may not decide by itself, journaled: a threshold (its
  // deadband) and a bit or equals alarm on an optional MQTT field (a message without it keeps the
  // state). One on a point every message carries is decided again by the first message after a
  // restart: not journaled (null), so its flips (a door held open's) write nothing.
  const optionalFields = new Set((doc.mqtt?.fields ?? []).filter((f) => !f.required).map((f) => f.name));
  // An `all:` alarm is decided again from its parts (a part's field: the next message carrying it).
  const keptAlarms = alarms.map((a) => {
    const w = single(a);
    return w !== null && (isThreshold(a) || optionalFields.has(w.point));
  });
  return unreliableSources.length > 0 || alarms.length > 0
    ? {
        durable: declaredDurable(
          unreliableSources,
          keptAlarms,
          holdOf.flatMap((h, k) => (h === null ? [] : [k])),
          groups.flatMap((_g, k) => (peakOf[k] === null && commandOf[k] === null ? [] : [k])),
        ),
      }
    : {};
}
