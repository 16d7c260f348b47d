/**
 * Alert text in English (site.locale: en): per alert code a title, an
 * optional figure from the detail and the default action; per transition a
 * short phrase. Actions can be replaced per code in `alerts.actions`.
 */
import type { Catalogue } from "./catalogue.js";
import { hours, minutes, num, withProfileTexts } from "./catalogue.js";

export const en: Catalogue = {
  codes: withProfileTexts("en", {
    EMERGENCY_CALL: {
      title: "Emergency call",
      detail: (d) => (d.urgent === true ? "long press: the resident says it is serious" : null),
      action:
        "Call the resident now; if nobody answers or it is serious, send someone, and call 120 if needed.",
    },
    FALL_DETECTED: {
      title: "Possible fall",
      action:
        "Call the resident now to ask whether they are hurt; if nobody answers, send someone (120 if needed).",
    },
    BATTERY_LOW: {
      title: "Battery low",
      detail: (d) => (num(d, "battery") === null ? null : `${num(d, "battery")}% left`),
      action: "Arrange a battery change for the resident within a week.",
    },
    TAMPER: {
      title: "Device cover opened",
      action: "Check with the resident or the property office whether someone opened it; inspect if needed.",
    },
    DOOR_HELD_OPEN: {
      title: "Door left open",
      action:
        "Call the resident to check they are safe; for a fire door, ask the property office to close it.",
    },
    DEVICE_LOST: {
      title: "Device not heard from",
      detail: (d) => (num(d, "silentForMs") ? `silent for ${minutes(d.silentForMs)} min` : null),
      action:
        "Check the device's power and network; for a resident's device, call them to check they are safe and arrange a repair.",
    },
    WELFARE_CHECK: {
      title: "No activity",
      detail: (d) => (num(d, "periodMs") ? `nothing for over ${hours(d.periodMs)} h` : null),
      action: "Call the resident; if nobody answers, contact the family or send someone to visit.",
    },
    FIRE_ALARM: {
      title: "Fire alarm",
      detail: (d) => (num(d, "temperature") === null ? null : `${num(d, "temperature")} °C`),
      action:
        "Send someone to the station now; if there is a fire, call 119 and evacuate. Reset the panel afterwards.",
    },
    HYDRANT_PRESSURE_LOW: {
      title: "Hydrant pressure low",
      detail: (d) => (num(d, "pressure") === null ? null : `${num(d, "pressure")} MPa`),
      action: "Ask the property office or the maintenance contractor to check the pipes and the pump.",
    },
    EXTINGUISHER_MISSING: {
      title: "Extinguisher missing",
      action: "Send someone to the fire station to see whether it was taken; put it back or replace it.",
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
    VANDALISM: {
      title: "Device knocked or tilted",
      action: "Check the cameras or send someone to see whether the device was damaged.",
    },
    KIOSK_OUT_OF_SERVICE: {
      title: "Kiosk out of service",
      action: "Call the maintenance contractor and put a notice up for residents.",
    },
    PAPER_LOW: {
      title: "Paper low",
      detail: (d) => (num(d, "paper") === null ? null : `${num(d, "paper")}% left`),
      action: "Refill the kiosk's paper.",
    },
    OVERHEAT: {
      title: "Cabinet overheating",
      detail: (d) => (num(d, "temperature") === null ? null : `${num(d, "temperature")} °C`),
      action: "Check the cabinet's ventilation and fan; take the kiosk out of use if needed.",
    },
    WATER_LEVEL_LOW: {
      title: "Fire-water tank low",
      detail: (d) => (num(d, "reserveMm") === null ? null : `under the reserve of ${num(d, "reserveMm")} mm`),
      action:
        "Have the refill valve and pump checked and the tank refilled; the fire-fighting reserve is short.",
    },
    WATER_LEVEL_CRITICAL: {
      title: "Fire-water tank critically low",
      action: "Get the tank refilled now; tell the fire brigade if the water for fire fighting stays short.",
    },
    FREEZE_RISK: {
      title: "Fire-water tank may freeze",
      action: "Check the tank's heater and insulation; protect it against frost.",
    },
    STORAGE_DEGRADED: {
      title: "Gateway storage failing",
      action:
        "Alerts still arrive live but are lost if the gateway restarts: ask a technician to check the disk.",
    },
    DEVICE_MISBEHAVING: {
      title: "Device sending too fast",
      action:
        "The device keeps sending faster than its model allows; the excess is dropped (never emergency calls or other P1 messages): ask a technician to check the device, or whether someone else uses its account.",
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
    escalated: (a) => `not acknowledged for ${a.minutes} min, escalation ${a.level}`,
  },
  testPrefix: "[TEST] ",
  declaredAction: "Follow the site's procedure for this device; send someone to look if in doubt.",
  gateway: "the gateway",
  afterTitle: ": ",
  between: ", ",
  beforeTransition: " — ",
  bracket: (s) => ` (${s})`,
  deviceAt: (device, location) => (location ? `${device} (${location})` : device),
  householdWith: (household, resident) => (resident ? `${household}, ${resident}` : household),
};
