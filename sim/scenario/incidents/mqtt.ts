/**
 * Incidents on the MQTT devices: EC-200 pendants, DS-10 door contacts, GD-2 gas detectors.
 */
import type { Fleet, MqttDevice } from "../../fleet.js";
import type { Ds10 } from "../../mqtt/ds10.js";
import type { Ec200 } from "../../mqtt/ec200.js";
import { GD2_LOW_SET_POINT, type Gd2 } from "../../mqtt/gd2.js";
import { randomInt } from "../../mqtt/random.js";
import { LONGEST_QUIET_HOURS, residentDays } from "../../mqtt/resident-day.js";
import { type SiteModel, welfareOf } from "../../site.js";
import { POWER_CUT_OUTAGE_MS, POWER_FAIL_AFTER_MS } from "../schema.js";
import type { IncidentContext, IncidentOf, IncidentSpec, IncidentTable } from "./spec.js";

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
/** Front doors: DS-10s of a household (a fire door of a community building has none). */
const frontDoors = (fleet: Fleet): string[] =>
  fleet.ofModel("ds10").flatMap((x) => (x.spec.household ? [x.spec.id] : []));

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** A passage through the door in real time at least this long, open to closed (a bounce is within 200 ms). */
const MIN_PASSAGE_MS = 300;

/**
 * Why a resident's day or stay indoors cannot be told on these doors: a door of no household, a
 * household whose checks are off (stays-in), or a day whose compressed time does not fit the
 * household's welfare period.
 */
function welfareRefusal(
  p: IncidentOf<"resident-day" | "stays-in">,
  pool: readonly string[],
  fleet: Fleet,
  site: SiteModel,
): string | undefined {
  const dayMs = p.dayLength ?? DAY_MS;
  if (dayMs < 10_000)
    return `a dayLength of ${dayMs / 1000} s leaves no time for the door's passages: give 10s or more`;
  for (const id of pool) {
    const household = fleet.specs.get(id)?.household;
    if (!household) return `${id} is the door of no household: welfare checks are a household's`;
    const w = welfareOf(site, household);
    const periodMs = w.periodS * 1000;
    if (p.do === "resident-day") {
      const quietMs = (LONGEST_QUIET_HOURS / 24) * dayMs;
      if (w.enabled && quietMs >= periodMs)
        return `a day of ${dayMs / 1000} s leaves ${id} shut for up to ${quietMs / 1000} s (${LONGEST_QUIET_HOURS} h of the night), as long as ${household}'s welfare period (${w.periodS} s): the gateway would rightly raise WELFARE_CHECK; give a dayLength under ${Math.floor((periodMs * 24) / LONGEST_QUIET_HOURS / 1000)} s`;
      continue;
    }
    if (!w.enabled) return `${household} has welfare checks off: staying in raises nothing`;
    if (w.quietHours)
      return `${household} has quiet hours (${w.quietHours}): a check due in them waits for their end, which the site's clock decides, not the scenario`;
    const stayMs = (p.days ?? 2) * dayMs;
    if (stayMs <= periodMs)
      return `${p.days ?? 2} day(s) of ${dayMs / 1000} s indoors is not longer than ${household}'s welfare period (${w.periodS} s): no check falls due`;
  }
  return undefined;
}

/**
 * One passage through the door: it opens, and closes `openMs` later. Resolves false when the run
 * was stopped first (the door is closed again by the restore).
 */
async function passage(ctx: IncidentContext, door: Ds10, openMs: number): Promise<boolean> {
  await door.open();
  let closed = false;
  await ctx.after(openMs, async () => {
    await door.close();
    closed = true;
  });
  return closed;
}

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
  "resident-day": {
    model: "DS-10 on a household's front door",
    pool: frontDoors,
    // Nothing: the household is active every day (a WELFARE_CHECK or DOOR_HELD_OPEN is unexpected).
    code: "none",
    check: welfareRefusal,
    run: async (ctx, p, { id, label, at }) => {
      const door = ctx.fleet.mqtt.get(id) as Ds10;
      const dayMs = p.dayLength ?? DAY_MS;
      const holdMs = (ctx.fleet.specs.get(id)?.holdOpenTimeS ?? 600) * 1000;
      ctx.expectFor(p, label, id, at, at);
      ctx.onRestore(() => (door.contact === "open" ? door.close() : undefined));
      // One passage after the other, on the day's timeline from the phase's start (midnight).
      let now = 0;
      for (const pass of residentDays(ctx.rng, p.days ?? 1)) {
        const due = (pass.hour / 24) * dayMs;
        // Compressed with the day, but a real opening (not a bounce) and never held open.
        const openMs = Math.max(MIN_PASSAGE_MS, Math.min((pass.openS * 1000 * dayMs) / DAY_MS, holdMs / 2));
        let reached = false;
        await ctx.after(due - now, () => {
          reached = true;
        });
        if (!reached || !(await passage(ctx, door, openMs))) return;
        now = due + openMs;
      }
    },
  },
  "stays-in": {
    model: "DS-10 on a household's front door",
    pool: frontDoors,
    code: "WELFARE_CHECK",
    check: welfareRefusal,
    run: async (ctx, p, { id, label, at }) => {
      // Home from the last outing (the door opens and closes: the household's last activity),
      // then the door stays shut for `days`: heartbeats only, which are no activity. The check
      // is due one welfare period after that closing, once (a second one would be a duplicate);
      // then the resident goes out again, which clears it.
      const door = ctx.fleet.mqtt.get(id) as Ds10;
      const household = ctx.fleet.specs.get(id)?.household as string;
      const periodMs = welfareOf(ctx.site, household).periodS * 1000;
      ctx.onRestore(() => (door.contact === "open" ? door.close() : undefined));
      if (!(await passage(ctx, door, MIN_PASSAGE_MS))) return;
      ctx.expectFor(p, label, household, at, at + MIN_PASSAGE_MS + periodMs);
      await ctx.after((p.days ?? 2) * (p.dayLength ?? DAY_MS), () => passage(ctx, door, MIN_PASSAGE_MS));
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
