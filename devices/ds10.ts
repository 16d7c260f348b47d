/**
 * DS-10 door contact sensor (datasheets/ds10-door.md): decoding and rules.
 * Uplink `devices/ds10/<id>/up`; JSON or CBOR, at most 256 bytes; no downlink.
 */

import { duration, LANE_ALERT, LANE_TELEMETRY } from "../core/index.js";
import { BATTERY_LOW, batteryRule, batteryThreshold } from "./ec200.js";
import {
  asInteger,
  asObject,
  badFieldOf,
  checkIntRange,
  checkSeq,
  checkTs,
  type DroppedField,
  deviceClock,
  missingField,
  NO_DROPS,
  sideFields,
} from "./fields.js";
import {
  type DeviceSettings,
  type MqttDeviceProfile,
  type Rejection,
  type RuleContext,
  reject,
} from "./profile.js";
import { type ThresholdState, thresholdsDurable } from "./threshold.js";

export interface Ds10Sample {
  t: "state" | "hb";
  seq: number;
  /** Device clock, epoch ms; 0 when lost, or not readable exactly (a uint64 beyond 2^53-1). */
  ts: number;
  contact: "open" | "closed";
  tamper: boolean;
  /** Battery %, null when dropped (out of range or not an integer). */
  bat: number | null;
  /** Side fields left out: counted and logged, the message itself taken in. */
  dropped: readonly DroppedField[];
}

export interface Ds10State {
  contact: "open" | "closed" | null;
  /** Gateway time the current opening began (kept across a bounce). */
  openSince: number;
  /** When the last close happened by the device's clock, 0 when the message had none. */
  lastCloseAt: number;
  /** When the last close happened by the gateway's clock. */
  lastCloseGw: number;
  /** The cover as last reported; null until the first message since a start. */
  tamper: boolean | null;
  battery: ThresholdState;
  /** Openings since start, a bounce counted once. */
  openings: number;
}

export interface Ds10Settings {
  /** DOOR_HELD_OPEN after the door has been open this long. */
  holdOpenMs: number;
}

const config = {
  holdOpenTime: duration("600s").meta({ description: "Door open longer than this raises DOOR_HELD_OPEN" }),
};

const ALERTS = {
  TAMPER: { priority: 2, raised: "`tamper` becomes true", cleared: "`tamper` false" },
  DOOR_HELD_OPEN: {
    priority: 3,
    raised:
      "door open longer than `holdOpenTime` (default 600 s; a bounce within `alerts.contactDebounce`, 200 ms, is one opening)",
    cleared: "door closed (a bouncing close is one closing)",
    text: {
      "zh-CN": { title: "门长时间未关", action: "致电住户确认是否安全；消防门请通知物业关闭。" },
      en: {
        title: "Door left open",
        action:
          "Call the resident to check they are safe; for a fire door, ask the property office to close it.",
      },
    },
  },
  // The DS-10 has no low_battery event (datasheet): only its `bat` raises the alert.
  BATTERY_LOW: { ...BATTERY_LOW, raised: "`bat` under `alerts.batteryLowPercent` (15 %)" },
} as const;
type Ds10Code = keyof typeof ALERTS;

export const ds10: MqttDeviceProfile<
  Ds10Sample,
  Ds10State,
  { model: "ds10"; binding: "mqtt"; code: Ds10Code; settings: Ds10Settings; config: typeof config }
> = {
  model: "ds10",
  label: "DS-10",
  names: { "zh-CN": "门磁", en: "door sensor" },
  simulator: "sim/mqtt/ds10.ts",
  transport: "mqtt",
  binding: "mqtt",
  interval: "3600s",
  config,
  settings: (c) => ({ holdOpenMs: c.holdOpenTime }),
  alerts: ALERTS,
  maxPayloadBytes: 256,
  lostPriority: 3,
  uplinkTopic: (id) => `devices/ds10/${id}/up`,
  downlinkTopic: () => null,

  parse(value): Ds10Sample | Rejection {
    const o = asObject(value);
    if (!o) return reject("bad-field", "payload is not a map");
    const t = o.t;
    if (t !== "state" && t !== "hb") return badFieldOf(o, "t", '"state" or "hb"');
    // Essential: kind, seq, and the state it reports (contact, tamper); `ts` and `bat` are side fields.
    const problem =
      checkSeq(o) ??
      (o.contact !== "open" && o.contact !== "closed"
        ? badFieldOf(o, "contact", '"open" or "closed"')
        : null) ??
      (typeof o.tamper !== "boolean" ? badFieldOf(o, "tamper", "true or false") : null);
    if (problem) return problem;
    const tsBad = missingField(o, "ts") ?? checkTs(o);
    const batBad = missingField(o, "bat") ?? checkIntRange(o, "bat", 0, 100);
    // Every message is decoded here: the list is built only for one that has a field to drop.
    const drops =
      tsBad === null && batBad === null
        ? NO_DROPS
        : sideFields([
            ["ts", tsBad],
            ["bat", batBad],
          ]);
    return {
      t,
      seq: asInteger(o.seq) as number,
      ts: tsBad === null ? deviceClock(o.ts) : 0,
      contact: o.contact as "open" | "closed",
      tamper: o.tamper as boolean,
      bat: batBad === null ? (asInteger(o.bat) as number) : null,
      dropped: drops,
    };
  },

  commands: {},
  suppressed: () => false,
  seq: (s) => s.seq,
  deviceTime: (s) => s.ts,
  droppedFields: (s) => s.dropped,
  quality: (s) => (s.dropped.length > 0 ? "field-dropped" : null),
  // A state change or a tamper report may raise an alert; a plain heartbeat only refreshes.
  lane: (s) => (s.t === "state" || s.tamper ? LANE_ALERT : LANE_TELEMETRY),
  telemetryWhen: [
    { field: "t", oneOf: ["hb"] },
    { field: "tamper", oneOf: [false] },
  ],
  isActivity: (s) => s.t === "state",

  metrics: (s) => ({
    contact: { value: s.contact },
    tamper: { value: s.tamper },
    ...(s.bat !== null ? { battery: { value: s.bat, unit: "%" } } : {}),
  }),

  // The deadbands of its analog alerts across a restart: a restored alert holds until its clear point.
  durable: thresholdsDurable<Ds10State>(1, (st) => st.battery),

  shiftTimes: (st, ms) => {
    if (st.openSince !== 0) st.openSince += ms;
    if (st.lastCloseGw !== 0) st.lastCloseGw += ms;
  },
  initialState: () => ({
    contact: null,
    openSince: 0,
    lastCloseAt: 0,
    lastCloseGw: 0,
    tamper: null,
    battery: batteryThreshold(),
    openings: 0,
  }),

  rules(
    s: Ds10Sample,
    state: Ds10State,
    settings: DeviceSettings & Ds10Settings,
    ctx: RuleContext<Ds10Code>,
  ): void {
    // Older than a message already applied (a `state` parked while the alert lane was full, its
    // newer heartbeat drained first): the door and battery it reports are over, the newer ones
    // stand. A cover it found removed that the newer message finds back on was still removed:
    // raised and cleared, as in the order received.
    if (ctx.stale) {
      if (s.tamper && !state.tamper) {
        ctx.condition("TAMPER", true, { priority: 2, causes: ["cover removed"] });
        ctx.condition("TAMPER", false, { priority: 2 });
      }
      return;
    }
    // The first message since a start reports the cover as it is (`tamper` null: not yet known),
    // so a TAMPER restored from the journal clears when the cover is back on.
    if (s.tamper !== state.tamper) {
      state.tamper = s.tamper;
      ctx.condition("TAMPER", s.tamper, { priority: 2, causes: ["cover removed"] });
    }
    if (s.contact === "open" && state.contact !== "open") {
      // Bounce timing uses the device's own clock when both messages have it (radio and MQTT delays
      // skew arrival times), else the gateway's: never one clock against the other, and never a
      // device clock set back between the two (a negative gap is no bounce: a real opening minutes
      // after a close would take the old opening's hold time and raise DOOR_HELD_OPEN at once).
      const deviceGap = s.ts > 0 && state.lastCloseAt > 0 ? s.ts - state.lastCloseAt : -1;
      const gap = deviceGap >= 0 ? deviceGap : ctx.now - state.lastCloseGw;
      const bounce =
        state.contact === "closed" && state.openSince > 0 && gap >= 0 && gap <= settings.contactDebounceMs;
      if (!bounce) {
        state.openSince = ctx.now;
        state.openings++;
      }
      state.contact = "open";
      ctx.condition("DOOR_HELD_OPEN", true, {
        priority: 3,
        causes: ["door open"],
        onDelayMs: settings.holdOpenMs,
        since: state.openSince,
      });
    } else if (s.contact === "closed" && state.contact !== "closed") {
      // Open, or unknown (null: the first message since a start), so that a DOOR_HELD_OPEN restored
      // from the journal clears too. A close can bounce (closed/open/closed within the debounce): a
      // raised alert clears only once the door has stayed closed that long, or the bounce's
      // reopening (the same opening, long past the hold time) reactivated it at once.
      state.contact = "closed";
      state.lastCloseAt = s.ts;
      state.lastCloseGw = ctx.now;
      ctx.condition("DOOR_HELD_OPEN", false, { priority: 3, offDelayMs: settings.contactDebounceMs });
    }
    batteryRule(s.bat, state, settings, ctx);
  },
};
