/**
 * Alert text in English (site.locale: en): for the gateway's own codes and
 * the codes several models share, a title, an optional figure from the
 * detail and the default action (a code of one model brings its words in its
 * profile, `AlertSpec.text`); per transition a short phrase. Actions can be
 * replaced per code in `alerts.actions`.
 */
import type { Catalogue } from "./catalogue.js";
import { num, type SpanWords, span, withProfileTexts } from "./catalogue.js";

const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? "" : "s"}`;
const EN_SPAN: SpanWords = {
  day: (n) => plural(n, "day"),
  hour: (n) => plural(n, "hour"),
  minute: (n) => plural(n, "minute"),
  second: (n) => plural(n, "second"),
  join: " ",
};
/** A span of time in English: "2 hours 5 minutes", "30 seconds". */
export const enSpan = (ms: unknown): string => span(ms, EN_SPAN);

export const en: Catalogue = {
  codes: withProfileTexts("en", {
    BATTERY_LOW: {
      title: "Battery low",
      detail: (d) => (num(d, "battery") === null ? null : `${num(d, "battery")}% left`),
      action: "Arrange a battery change for the resident within a week.",
    },
    TAMPER: {
      title: "Device cover opened",
      action: "Check with the resident or the property office whether someone opened it; inspect if needed.",
    },
    DEVICE_LOST: {
      title: "Device not heard from",
      detail: (d) => (num(d, "silentForMs") ? `silent for ${enSpan(d.silentForMs)}` : null),
      action:
        "Check the device's power and network; for a resident's device, call them to check they are safe and arrange a repair.",
    },
    WELFARE_CHECK: {
      title: "No activity",
      detail: (d) => (num(d, "periodMs") ? `nothing for over ${enSpan(d.periodMs)}` : null),
      action: "Call the resident; if nobody answers, contact the family or send someone to visit.",
    },
    FAULT: {
      title: "Device fault",
      detail: (d) => (d.faultCode === undefined ? null : `fault code ${String(d.faultCode)}`),
      action: "Call the maintenance contractor; patrol fire equipment by hand until it is fixed.",
    },
    POWER_FAIL: {
      title: "Mains power lost",
      action: "The device runs on its battery: ask the property office to restore the power.",
    },
    STORAGE_DEGRADED: {
      title: "Gateway storage failing",
      action:
        "Alerts still arrive live but are lost if the gateway restarts: ask a technician to check the disk.",
    },
    STORAGE_DAMAGED_AT_START: {
      title: "Gateway storage damaged at start",
      detail: (d) =>
        [
          num(d, "bytes") ? `${num(d, "bytes")} bytes damaged` : null,
          num(d, "missingSegments") ? `${num(d, "missingSegments")} journal files missing` : null,
        ]
          .filter((x) => x !== null)
          .join(", ") || null,
      action:
        "At start the gateway found its stored state damaged or missing: alerts, acknowledgements or closures from before the restart may be lost or back open. Check the open alerts against the devices and residents, and ask a technician to check the disk.",
    },
    CONFIG_REFUSED: {
      title: "Gateway site file refused",
      detail: (d) => (typeof d.file === "string" ? d.file : null),
      action:
        "At its last start the gateway refused its site file and runs on the last configuration it ran with: changes made since are not in force, and the next restart depends on that copy. Ask the technician to correct the file (linli config check names each problem), then run linli reload.",
    },
    DEVICE_MISBEHAVING: {
      title: "Device sending too fast",
      detail: (_d, causes) => (causes.length === 0 ? null : causes.join(", ")),
      action:
        "The device keeps sending faster than its model allows, or keeps more P1 messages (calls, alarms) or other alert messages waiting than its share: its ordinary messages beyond its rate are dropped (never a P1 message); its messages beyond its share are not taken in until it sends them again, so that other residents' calls and alerts are not delayed. Ask a technician to check the device, or whether someone else uses its account.",
    },
  }),
  transitions: {
    raised: () => "",
    repeated: (a) => `again (${a.count} times)`,
    reactivated: () => "again after it had cleared",
    acknowledged: (a) => `acknowledged by ${a.by ?? "an operator"}`,
    cleared: () => "back to normal, to be acknowledged",
    closed: () => "closed",
    "cancelled-by-resident": () => "cancelled by the resident",
    delivered: () => "the resident's device confirmed the acknowledgement",
    shelved: (a) => `shelved by ${a.by ?? "an operator"}${a.until ? ` until ${a.until}` : ""}`,
    unshelved: () => "unshelved",
    "shelve-expired": () => "shelving ended, shown again",
    "out-of-service": (a) => `device out of service${a.by ? ` (${a.by})` : ""}`,
    "in-service": () => "device back in service",
    chattering: () => "chattering, changes held",
    "chattering-ended": () => "no longer chattering",
    "flood-released": () => "sent after the alert flood",
    escalated: (a) => `not acknowledged for ${enSpan(a.unacknowledgedMs)}, escalation ${a.level}`,
    changed: () => "situation changed",
  },
  windowEnded: "call window over, still not acknowledged",
  replaced: (w) =>
    "priority" in w
      ? `closed: the condition changed to priority P${w.priority}, see the new alert that replaces this one`
      : `closed: ${w.ended === "maintenance" ? "maintenance" : "test mode"} ended, see the new alert that replaces this one`,
  gone: (w, modelName) =>
    "removed" in w
      ? `closed: the ${w.removed} was removed from the site configuration`
      : "corrected" in w
        ? w.corrected === "reload"
          ? "closed: the configuration was corrected and reloaded"
          : "closed: the configuration was corrected and the gateway restarted"
        : `closed: the device was replaced in the site configuration (now ${modelName ?? w.model})`,
  recordedAwaitingAck: "recorded, awaiting acknowledgement",
  testPrefix: "[TEST] ",
  declaredAction: "Follow the site's procedure for this device; send someone to look if in doubt.",
  declaredPeak: (v, unit, doubtful) =>
    `peak ${v}${unit ? ` ${unit}` : ""}${doubtful ? " (sensor in fault, reading doubtful)" : ""}`,
  declaredSent: (command) => `${command} sent by the gateway`,
  declaredQueued: (command) =>
    `${command} not delivered yet: the device is not connected, sent when it reconnects`,
  detailSep: ", ",
  afterTitle: ": ",
  beforeTransition: " — ",
  bracket: (s) => ` (${s})`,
  unnamedHousehold: (id) => `household ${id}`,
  unnamedDevice: (model, id) => `${model ?? "device"} ${id}`,
  deviceAt: (device, location) => (location ? `${device} (${location})` : device),
  householdWith: (household, resident) => (resident ? `${household}, ${resident}` : household),
  // "at": a household is a place ("Emergency call at 1号楼 101室, 张阿姨"); "X of 1号楼 101室, 张阿姨" was not English.
  of: (owner, thing) => `${thing} at ${owner}`,
  deviceAlert: (device, title) => `${title}, ${device}`,
  place: (household, device) =>
    household !== null && device !== null ? `${device} at ${household}` : (device ?? household ?? ""),
};
