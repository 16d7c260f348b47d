/**
 * A code's incident: its `peak` (the highest value of a point while the condition holds) and its
 * automatic `command` (sent once per incident), reported as the alert's detail fields.
 */
import type { RuleContext } from "../../profile.js";
import type { DeclaredSample, DeclaredSettings } from "../sample.js";
import type { AutoCommandDoc, DeclaredProfileDoc } from "../schema.js";
import type { DeclaredState } from "../state.js";
import type { Codes } from "./codes.js";
import type { Unreliable } from "./unreliable.js";

/** A command's `unless` on the last value of its point; a point never had holds neither. */
const unlessHolds = (c: AutoCommandDoc, st: DeclaredState): boolean => {
  const u = c.unless;
  if (u === undefined) return false;
  const v = st.seen[u.point];
  if (v === undefined) return false;
  return u.equals !== undefined ? v === u.equals : v !== u.notEquals;
};

export function incidentOf(doc: DeclaredProfileDoc, { peakOf, commandOf }: Codes, { doubtful }: Unreliable) {
  /**
   * A code's incident (`peak`, `command`) as its condition is reported: begun (reset) when it turns
   * active, the peak taken from this sample, the command sent once; the alert's detail fields, or
   * undefined for a code with neither or an inactive condition.
   */
  return (
    k: number,
    active: boolean,
    s: DeclaredSample,
    st: DeclaredState,
    settings: DeclaredSettings,
    ctx: RuleContext,
  ): Record<string, number | string | boolean> | undefined => {
    const pk = peakOf[k] ?? null;
    const cmd = commandOf[k] ?? null;
    if (pk === null && cmd === null) return undefined;
    const inc = st.incidents[k]!;
    if (!active) {
      inc.on = false;
      return undefined;
    }
    if (!inc.on) {
      inc.on = true;
      inc.peak = Number.NaN;
      inc.suspectPeak = Number.NaN;
      inc.sent = false;
    }
    const detail: Record<string, number | string | boolean> = {};
    if (pk !== null) {
      const v = s.v[pk.point];
      // NaN compares false: the first value of the incident is its peak.
      if (typeof v === "number") {
        if (!doubtful(s, pk.point, st)) {
          if (!(v <= inc.peak)) inc.peak = v;
        } else if (
          pk.suspectFrom !== undefined &&
          s.v[pk.suspectFrom.point] === pk.suspectFrom.equals &&
          !(v <= inc.suspectPeak)
        )
          inc.suspectPeak = v;
      }
      // Never 0 without a figure: an incident with no value is not one of value 0.
      detail[pk.as] = !Number.isNaN(inc.peak)
        ? inc.peak
        : Number.isNaN(inc.suspectPeak)
          ? "unknown"
          : inc.suspectPeak;
      // Named false too (and the command's fields below): the engine keeps the detail fields an
      // update leaves out, and a later believed peak or a new incident must not keep them true.
      if (pk.suspectFrom !== undefined)
        detail[`${pk.as}Suspect`] = Number.isNaN(inc.peak) && !Number.isNaN(inc.suspectPeak);
    }
    if (cmd !== null) {
      // schema.ts makes sure the switch is a 0/1 setting with a default.
      const on =
        cmd.setting === undefined ||
        (settings.params[cmd.setting] ?? (doc.settings[cmd.setting]?.default as number)) === 1;
      if (on && !inc.sent && !unlessHolds(cmd, st)) inc.sent = ctx.command(cmd.name);
      const as = (cmd.as ?? cmd.setting)!;
      detail[as] = inc.sent;
      // Queued for a device that is away: the text must not say it was sent.
      detail[`${as}Queued`] = inc.sent && (ctx.commandWaiting?.(cmd.name) ?? false);
    }
    return detail;
  };
}
