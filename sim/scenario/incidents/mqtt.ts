/**
 * Incidents on the MQTT devices: EC-200 pendants, DS-10 door contacts, GD-2 gas detectors.
 */
import type { Fleet, MqttDevice } from "../../fleet.js";
import type { Ds10 } from "../../mqtt/ds10.js";
import type { Ec200 } from "../../mqtt/ec200.js";
import { GD2_LOW_SET_POINT, type Gd2 } from "../../mqtt/gd2.js";
import { randomInt } from "../../mqtt/random.js";
import { POWER_CUT_OUTAGE_MS, POWER_FAIL_AFTER_MS } from "../schema.js";
import type { IncidentSpec, IncidentTable } from "./spec.js";

/** GD-2 datasheet: "a GAS_LEAK whose valve is not `closed` within 20 s" is GAS_VALVE_NOT_CLOSED. */
const VALVE_NOT_CLOSED_AFTER_MS = 20_000;
/** A detector back from a power cut must have a reading accepted (ts 0, mains false) within this. */
const READING_WITHIN_MS = 15_000;
/** Cooking: the pan heats for this long before `lel` reaches its peak (compressed from the datasheet's minutes). */
const COOKING_RAMP_MS = 10_000;

const idsOf =
  (...models: Array<"ec200" | "ds10" | "gd2">) =>
  (fleet: Fleet): string[] =>
    models.flatMap((model) => fleet.ofModel(model).map((x) => x.spec.id));

const ec200s = idsOf("ec200");
const ds10s = idsOf("ds10");
const gd2s = idsOf("gd2");

/** A pendant alarm; with `offlineFor`, sent while the base station is away and re-sent on its return. */
function pendantAlarm(
  act: (pendant: Ec200) => unknown,
): IncidentSpec<"press" | "long-press" | "fall">["run"] {
  return async (ctx, p, { id, label, at }) => {
    const pendant = ctx.fleet.mqtt.get(id) as Ec200;
    if (p.offlineFor !== undefined) {
      await pendant.goOffline({ lostAck: true });
      ctx.expectFor(p, label, id, at, at + p.offlineFor);
      void act(pendant);
      void ctx.after(p.offlineFor, () => pendant.goOnline());
      // Stopped before its uplink is back: it must not stay away.
      ctx.onRestore(() => pendant.goOnline());
    } else {
      ctx.expectFor(p, label, id, at, at);
      void act(pendant);
    }
    if (p.double) ctx.after(randomInt(ctx.rng, 1_000, 4_000), () => act(pendant));
  };
}

/**
 * The datasheet's leak: 2 %LEL a second to 40; the detector closes its valve on its own alarm (at
 * its low set-point), and a site with automatic shut-off has the gateway send valve_close too. A
 * jammed valve answers `ok` and never moves.
 */
const gasLeak: IncidentSpec<"gas-leak" | "jammed-valve">["run"] = (ctx, p, { id, label, at }) => {
  const gd2 = ctx.fleet.mqtt.get(id) as Gd2;
  const rate = p.rate ?? 2;
  const leakAt = at + Math.ceil(GD2_LOW_SET_POINT / rate) * 1000;
  if (p.do === "jammed-valve") {
    gd2.jamValve(true);
    ctx.expectFor(
      p,
      label,
      id,
      at,
      { GAS_LEAK: leakAt, GAS_VALVE_NOT_CLOSED: leakAt + VALVE_NOT_CLOSED_AFTER_MS },
      ["GAS_LEAK", "GAS_VALVE_NOT_CLOSED"],
    );
  } else ctx.expectFor(p, label, id, at, leakAt);
  gd2.leak(rate, p.peak ?? 40);
  if (p.ventilateAfter !== undefined)
    void ctx.after(p.ventilateAfter, () => {
      gd2.jamValve(false);
      gd2.ventilate();
    });
  // End of run: airing at 2 %LEL/s takes up to 20 s and the run ends first, leaving the last
  // alarm `high` (GAS_LEAK active). The gas is gone at once, and the restore waits until the
  // detector's `alarm` of level none is sent.
  ctx.onRestore(() => {
    gd2.jamValve(false);
    gd2.stopScenario();
    return gd2.setLel(0);
  });
};

export const MQTT_INCIDENTS = {
  press: { model: "EC-200", pool: ec200s, code: "EMERGENCY_CALL", run: pendantAlarm((d) => d.press()) },
  "long-press": {
    model: "EC-200",
    pool: ec200s,
    code: "EMERGENCY_CALL",
    run: pendantAlarm((d) => d.longPress()),
  },
  fall: { model: "EC-200", pool: ec200s, code: "FALL_DETECTED", run: pendantAlarm((d) => d.fall()) },
  tamper: {
    model: "DS-10",
    pool: ds10s,
    code: "TAMPER",
    run: (ctx, p, { id, label, at }) => {
      const door = ctx.fleet.mqtt.get(id) as Ds10;
      ctx.expectFor(p, label, id, at, at);
      void door.tamper(true);
      ctx.onRestore(() => door.tamper(false));
    },
  },
  "door-held-open": {
    model: "DS-10",
    pool: ds10s,
    code: "DOOR_HELD_OPEN",
    run: (ctx, p, { id, label, at }) => {
      const door = ctx.fleet.mqtt.get(id) as Ds10;
      const hold = (ctx.fleet.specs.get(id)?.holdOpenTimeS ?? 600) * 1000;
      ctx.expectFor(p, label, id, at, at + hold);
      void door.open();
      ctx.onRestore(() => door.close());
    },
  },
  bounce: {
    model: "DS-10",
    pool: ds10s,
    code: "none",
    run: (ctx, p, { id, label, at }) => {
      const door = ctx.fleet.mqtt.get(id) as Ds10;
      ctx.expectFor(p, label, id, at, at);
      void door.bounce().then(() => door.close());
    },
  },
  "low-battery": {
    model: "EC-200 or DS-10",
    pool: idsOf("ec200", "ds10"),
    code: "BATTERY_LOW",
    run: (ctx, p, { id, label, at }) => {
      const d = ctx.fleet.mqtt.get(id) as MqttDevice;
      ctx.expectFor(p, label, id, at, at);
      if ("lowBattery" in d) void d.lowBattery();
      ctx.onRestore(() => {
        d.setBattery(100);
        return d.heartbeat();
      });
    },
  },
  "battery-change": {
    model: "EC-200 or DS-10",
    pool: idsOf("ec200", "ds10"),
    code: "none",
    run: (ctx, p, { id, label, at }) => {
      // New batteries: the device clock restarts at 0 until it is set again (datasheet).
      const d = ctx.fleet.mqtt.get(id) as MqttDevice;
      ctx.expectFor(p, label, id, at, at);
      void d.batteryChange("zero");
      ctx.onRestore(() => d.resync());
    },
  },
  "gas-leak": { model: "GD-2", pool: gd2s, code: "GAS_LEAK", run: gasLeak },
  "jammed-valve": { model: "GD-2", pool: gd2s, code: "GAS_LEAK", run: gasLeak },
  cooking: {
    model: "GD-2",
    pool: gd2s,
    code: "none",
    run: (ctx, p, { id, label, at }) => {
      // Minutes of cooking pressed into seconds: the heartbeat the detector sends while the pan
      // is on goes out at the peak, so the gateway does see the gas, and must stay quiet.
      const gd2 = ctx.fleet.mqtt.get(id) as Gd2;
      const peak = p.peak ?? 4.5;
      const hold = p.duration ?? 20_000;
      ctx.expectFor(p, label, id, at, at);
      gd2.cooking(peak, hold, COOKING_RAMP_MS);
      ctx.after(COOKING_RAMP_MS + 1_500, () => gd2.heartbeat());
      if (p.ventilateAfter !== undefined) void ctx.after(p.ventilateAfter, () => gd2.ventilate());
      ctx.onRestore(() => {
        gd2.stopScenario();
        return gd2.setLel(0);
      });
    },
  },
  "valve-fault": {
    model: "GD-2",
    pool: gd2s,
    code: "FAULT",
    run: (ctx, p, { id, label, at }) => {
      // The valve reports `fault` (its motor): the next heartbeat says so.
      const gd2 = ctx.fleet.mqtt.get(id) as Gd2;
      const before = gd2.valve;
      ctx.expectFor(p, label, id, at, at);
      gd2.setValveFault(true);
      void gd2.heartbeat();
      // The motor works again and the valve is where it was (open, in most kitchens).
      ctx.onRestore(() => {
        gd2.setValveFault(false, before === "open" ? "open" : "closed");
        return gd2.heartbeat();
      });
    },
  },
  "power-cut": {
    model: "GD-2",
    pool: gd2s,
    code: "POWER_FAIL",
    // Silent for 3 heartbeat intervals is DEVICE_LOST (datasheet); the last heartbeat before the
    // cut may be an interval old, so an outage of 2 intervals or more may be lost.
    check: (p, pool, fleet) => {
      const outage = p.outage ?? POWER_CUT_OUTAGE_MS;
      for (const id of pool) {
        const hb = (fleet.specs.get(id)?.heartbeatIntervalS ?? 60) * 1000;
        if (outage >= 2 * hb)
          return `an outage of ${outage / 1000} s on ${id} (heartbeat every ${hb / 1000} s) may be DEVICE_LOST (3 intervals): keep it under ${(2 * hb) / 1000} s`;
      }
      return undefined;
    },
    run: (ctx, p, { id, label, at }) => {
      // GD-2 datasheet: "heartbeats stop for a minute, then come back with `ts` 0 and `mains`
      // false". Shorter than 3 heartbeat intervals: no DEVICE_LOST (any would be unexpected).
      // The readings with ts 0 must be accepted (a telemetry reading with no device time, mains
      // false), and POWER_FAIL is due 10 minutes after the detector is back on battery, if the
      // mains stays off that long.
      const gd2 = ctx.fleet.mqtt.get(id) as Gd2;
      const outage = p.outage ?? POWER_CUT_OUTAGE_MS;
      const back = at + outage;
      const onBatteryFor = p.duration === undefined ? Number.POSITIVE_INFINITY : p.duration - outage;
      ctx.expectFor(p, label, id, at, back + POWER_FAIL_AFTER_MS, [
        onBatteryFor > POWER_FAIL_AFTER_MS ? "POWER_FAIL" : "none",
      ]);
      ctx.matcher.expectReading({
        incident: label,
        model: "gd2",
        key: id,
        what: "hb with ts 0 and mains false accepted",
        after: back,
        dueBy: back + READING_WITHIN_MS,
        test: (r) =>
          r.deviceTime === null &&
          r.quality === "device-clock-invalid" &&
          (r.metrics as { mains?: { value?: unknown } } | undefined)?.mains?.value === false,
      });
      void gd2.powerCut(outage);
      const restored = () => {
        // The mains and the building's network are back: the clock is set again.
        gd2.timeServerReached();
        gd2.mainsRestored();
        return gd2.heartbeat();
      };
      if (p.duration !== undefined) ctx.after(p.duration, restored);
      ctx.onRestore(restored);
    },
  },
} satisfies IncidentTable;
