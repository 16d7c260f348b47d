/**
 * EC-200 emergency-call pendant (datasheets/ec200-pendant.md): decoding and rules.
 * Uplink `devices/ec200/<id>/up`, downlink `devices/ec200/<id>/down`; JSON or CBOR, at most 512 bytes.
 */
import { LANE_ALERT, LANE_P1, LANE_TELEMETRY } from "../core/index.js";
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
  type AlertSpec,
  type DeviceSettings,
  INACTIVE,
  type MqttDeviceProfile,
  type Rejection,
  type RuleContext,
  reject,
} from "./profile.js";
import { ThresholdState, thresholdsDurable } from "./threshold.js";

export type Ec200Event = "press" | "long_press" | "fall" | "cancel" | "low_battery";
const EVENTS: ReadonlySet<string> = new Set<Ec200Event>([
  "press",
  "long_press",
  "fall",
  "cancel",
  "low_battery",
]);

export interface Ec200Sample {
  t: "evt" | "hb";
  seq: number;
  /** Device clock, epoch ms; 0 when lost, or not readable exactly (a uint64 beyond 2^53-1). */
  ts: number;
  evt: Ec200Event | null;
  /** Battery %, null when the message's value was out of range or not an integer (`dropped`). */
  bat: number | null;
  /** dBm, null when dropped. */
  rssi: number | null;
  /** Alert id the pendant confirms it beeped for (reply to `ack_call`). */
  ackd: string | null;
  /** Side fields left out: counted and logged, the message itself taken in. */
  dropped: readonly DroppedField[];
}

export interface Ec200State {
  battery: ThresholdState;
}

/** BATTERY_LOW, shared with the DS-10 (both datasheets: `bat` and the site's battery marks). */
export const BATTERY_LOW = {
  priority: 4,
  raised: "`bat` under `alerts.batteryLowPercent` (15 %), or a `low_battery` event",
  cleared: "`bat` at or above `alerts.batteryClearPercent` (20 %)",
} as const;

const ALERTS = {
  EMERGENCY_CALL: {
    priority: 1,
    raised: "`press` or `long_press` (`urgent`)",
    cleared: "`alerts.emergencyCallWindow` (60 s) after the last press",
    text: {
      "zh-CN": {
        title: "紧急呼叫",
        detail: (d) => (d.urgent === true ? "住户长按，情况严重" : null),
        action: "立即致电住户；无人接听或情况紧急时派人上门，必要时拨打 120。",
      },
      en: {
        title: "Emergency call",
        detail: (d) => (d.urgent === true ? "long press: the resident says it is serious" : null),
        action:
          "Call the resident now; if nobody answers or it is serious, send someone, and call 120 if needed.",
      },
    },
  },
  FALL_DETECTED: {
    priority: 1,
    raised: "`fall`",
    cleared: "`alerts.emergencyCallWindow` (60 s) after the last fall",
    text: {
      "zh-CN": {
        title: "疑似跌倒",
        action: "立即致电住户确认是否受伤；无人接听时派人上门，必要时拨打 120。",
      },
      en: {
        title: "Possible fall",
        action:
          "Call the resident now to ask whether they are hurt; if nobody answers, send someone (120 if needed).",
      },
    },
  },
  BATTERY_LOW,
} as const satisfies Readonly<Record<string, AlertSpec>>;
type Ec200Code = keyof typeof ALERTS;

/** No fields of its own beyond the MQTT binding's. */
const config = {};

/** Alerts that a resident's cancel marks (datasheet: `cancel` row). */
const CANCELLABLE: readonly Ec200Code[] = ["EMERGENCY_CALL", "FALL_DETECTED"];

export const ec200: MqttDeviceProfile<
  Ec200Sample,
  Ec200State,
  { model: "ec200"; binding: "mqtt"; code: Ec200Code; settings: object; config: typeof config }
> = {
  model: "ec200",
  label: "EC-200",
  names: { "zh-CN": "紧急呼叫器", en: "pendant" },
  simulator: "sim/mqtt/ec200.ts",
  transport: "mqtt",
  binding: "mqtt",
  interval: "300s",
  config,
  settings: () => ({}),
  alerts: ALERTS,
  maxPayloadBytes: 512,
  // "a life-safety device that cannot call is an emergency of its own"
  lostPriority: 2,
  uplinkTopic: (id) => `devices/ec200/${id}/up`,
  downlinkTopic: (id) => `devices/ec200/${id}/down`,

  parse(value): Ec200Sample | Rejection {
    const o = asObject(value);
    if (!o) return reject("bad-field", "payload is not a map");
    const t = o.t;
    if (t !== "evt" && t !== "hb") return badFieldOf(o, "t", '"evt" or "hb"');
    // Essential: what the message is (t, evt) and which one (seq). Anything else is a side field.
    const problem = checkSeq(o);
    if (problem) return problem;
    let evt: Ec200Event | null = null;
    if (t === "evt") {
      if (typeof o.evt !== "string" || !EVENTS.has(o.evt)) {
        return badFieldOf(o, "evt", "one of press, long_press, fall, cancel, low_battery");
      }
      evt = o.evt as Ec200Event;
    }
    const ackd = typeof o.ackd === "string" && o.ackd.length > 0 && o.ackd.length <= 64 ? o.ackd : null;
    const tsBad = missingField(o, "ts") ?? checkTs(o);
    const batBad = missingField(o, "bat") ?? checkIntRange(o, "bat", 0, 100);
    const rssiBad = missingField(o, "rssi") ?? checkIntRange(o, "rssi", -120, 0);
    // Every message is decoded here: the list is built only for one that has a field to drop.
    const drops =
      tsBad === null && batBad === null && rssiBad === null
        ? NO_DROPS
        : sideFields([
            ["ts", tsBad],
            ["bat", batBad],
            ["rssi", rssiBad],
          ]);
    return {
      t,
      seq: asInteger(o.seq) as number,
      ts: tsBad === null ? deviceClock(o.ts) : 0,
      evt,
      bat: batBad === null ? (asInteger(o.bat) as number) : null,
      rssi: rssiBad === null ? (asInteger(o.rssi) as number) : null,
      ackd,
      dropped: drops,
    };
  },

  commands: {
    locate: {
      names: { "zh-CN": "让挂件鸣响（寻找）", en: "beep to locate" },
      doc: 'downlink `{"cmd":"locate"}`: the pendant beeps for 10 s',
      message: () => ({ cmd: "locate" }),
    },
  },
  // The pendant beeps when an operator acknowledges its call or fall, and confirms with `ackd`.
  ackDownlink: (code, alertId) =>
    code === "EMERGENCY_CALL" || code === "FALL_DETECTED" ? { cmd: "ack_call", alertId } : null,
  suppressed: () => false,
  seq: (s) => s.seq,
  deviceTime: (s) => s.ts,
  droppedFields: (s) => s.dropped,
  quality: (s) => (s.dropped.length > 0 ? "field-dropped" : null),

  telemetryWhen: [{ field: "t", oneOf: ["hb"] }],
  lane(s) {
    if (s.evt === null) return LANE_TELEMETRY;
    // Cancel travels with the calls it refers to, so it is never processed before them.
    return s.evt === "low_battery" ? LANE_ALERT : LANE_P1;
  },

  // Datasheets README: activity is "any event from any device of the household" (low_battery too).
  isActivity: (s) => s.evt !== null,

  metrics(s) {
    const m: Record<string, { value: number | string | boolean; unit?: string }> = {};
    if (s.bat !== null) m.battery = { value: s.bat, unit: "%" };
    if (s.rssi !== null) m.rssi = { value: s.rssi, unit: "dBm" };
    if (s.evt !== null) m.event = { value: s.evt };
    return m;
  },

  initialState: () => ({ battery: batteryThreshold() }),
  // BATTERY_LOW's deadband across a restart: a restored alert holds until the clear mark.
  durable: thresholdsDurable<Ec200State>(1, (st) => st.battery),

  rules(s: Ec200Sample, state: Ec200State, settings: DeviceSettings, ctx: RuleContext<Ec200Code>): void {
    switch (s.evt) {
      case "press":
        ctx.raise("EMERGENCY_CALL", {
          priority: 1,
          causes: ["press"],
          windowMs: settings.emergencyCallWindowMs,
        });
        break;
      case "long_press":
        ctx.raise("EMERGENCY_CALL", {
          priority: 1,
          causes: ["long_press"],
          urgent: true,
          windowMs: settings.emergencyCallWindowMs,
        });
        break;
      case "fall":
        ctx.raise("FALL_DETECTED", {
          priority: 1,
          causes: ["fall"],
          windowMs: settings.emergencyCallWindowMs,
        });
        break;
      case "cancel":
        ctx.markCancelled(CANCELLABLE);
        break;
      case "low_battery":
      case null:
        break;
    }
    if (s.ackd !== null) ctx.confirmDelivered(s.ackd);
    // The battery is a lasting condition, and lanes reorder: a `low_battery` (alert lane) received
    // before a press (P1) is drained after it. A newer message's rules already ran, so its `bat` is
    // the newer reading: this one's, event or level, must not overrule it (a pendant sends `bat`
    // in every message; were the newer one's dropped, the next reading under the mark raises it).
    if (ctx.stale) return;
    // The pendant's own `low_battery` ("battery under 15 %") wins over the `bat` it carries: the
    // message raises BATTERY_LOW and does not clear it; a later reading at the clear mark does.
    if (s.evt === "low_battery") {
      state.battery.active = true;
      ctx.condition("BATTERY_LOW", true, {
        priority: 4,
        causes: ["low_battery"],
        ...(s.bat !== null ? { detail: { battery: s.bat } } : {}),
      });
    } else batteryRule(s.bat, state, settings, ctx);
  },
};

/** A battery level test; its marks come from the site's settings on every sample (a reload may move them). */
export function batteryThreshold(): ThresholdState {
  return new ThresholdState({ below: 15, deadband: 5 });
}

/** BATTERY_LOW under the low mark, cleared at the clear mark: the gap keeps a battery near 15 % from flapping. */
export function batteryRule(
  bat: number | null,
  state: { battery: ThresholdState },
  settings: DeviceSettings,
  ctx: RuleContext<"BATTERY_LOW">,
): void {
  // A dropped reading says nothing about the battery: the alert stays as it was.
  if (bat === null) return;
  const low = settings.batteryLowPercent;
  const was = state.battery.setSpec({
    below: low,
    deadband: Math.max(0, settings.batteryClearPercent - low),
  }).active;
  // The first reading since a start (no value yet) reports the battery as it is: a BATTERY_LOW
  // restored from the journal clears at the clear mark instead of staying open for good.
  const first = Number.isNaN(state.battery.value);
  const now = state.battery.update(bat);
  if (first && !now) ctx.condition("BATTERY_LOW", false, INACTIVE[4]);
  else if (now && !was)
    ctx.condition("BATTERY_LOW", true, { priority: 4, causes: ["battery"], detail: { battery: bat } });
  else if (!now && was) ctx.condition("BATTERY_LOW", false, { priority: 4 });
}
