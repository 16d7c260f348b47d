/**
 * Incidents on the Modbus devices: MFS-8 fire panels, GK-3 kiosks, LV-4 tank level sensors, and
 * whole RTU buses.
 */
import type { Fleet } from "../../fleet.js";
import type { Gk3Controller } from "../../modbus/gk3.js";
import { type MalformedKind, RTU_MALFORMED_KINDS, TCP_MALFORMED_KINDS } from "../../modbus/slave.js";
import { WINTER_COOLING_C_PER_MIN, WINTER_HEATER_C_PER_MIN } from "../schema.js";
import type { IncidentSpec, IncidentTable } from "./spec.js";

/** LV-4 datasheet: WATER_LEVEL_LOW once the level is under the reserve, "held 30 s". */
const LEVEL_LOW_HELD_MS = 30_000;
/** LV-4 datasheet: WATER_LEVEL_CRITICAL under 30 % of the tank height. */
const CRITICAL_SHARE = 0.3;
/** LV-4 datasheet: FREEZE_RISK once the water is "under 4.0 °C for 10 minutes". */
const FREEZE_BELOW_C = 4.0;
const FREEZE_HELD_MS = 600_000;
/** How far ahead a freezing night is forecast (a heater that loses by 0.01 °C/min still gets there). */
const FREEZE_HORIZON_MS = 24 * 3_600_000;

const panels = (fleet: Fleet) => [...fleet.panels.keys()];
const kiosks = (fleet: Fleet) => [...fleet.kiosks.keys()];
const tanks = (fleet: Fleet) => [...fleet.tanks.keys()];

/** A kiosk fault: `start` at the incident, `undo` at the end of the run. */
function kioskFault(
  start: (kiosk: Gk3Controller) => unknown,
  undo: (kiosk: Gk3Controller) => unknown,
): IncidentSpec<"kiosk-tamper" | "vandalism" | "paper-low">["run"] {
  return (ctx, p, { id, label, at }) => {
    const kiosk = ctx.fleet.kiosks.get(id);
    ctx.expectFor(p, label, id, at, at);
    if (kiosk) start(kiosk);
    ctx.onRestore(() => (kiosk ? undo(kiosk) : undefined));
  };
}

/**
 * A winter night (LV-4 datasheet): the water cools, the heater switches on at 4 °C. tank-winter:
 * it keeps up, the water stays at 4-5 °C and nothing may be raised. tank-freeze: it cannot (or
 * gives no heat), the water goes under 4.0 °C and FREEZE_RISK is due 10 minutes after the sensor
 * first reads under 4.0 °C (when the gateway can first see it; forecast with the emulator's own
 * model of the night).
 */
const winterNight: IncidentSpec<"tank-winter" | "tank-freeze">["run"] = (ctx, p, { id, label, at }) => {
  const tank = ctx.fleet.tanks.get(id);
  if (!tank) return;
  const before = tank.getTemperature();
  const cooling = p.cooling ?? WINTER_COOLING_C_PER_MIN;
  const heater = p.heater ?? (p.do === "tank-winter" ? WINTER_HEATER_C_PER_MIN : 0);
  if (p.from !== undefined) tank.setTemperature(p.from);
  if (p.do === "tank-freeze") {
    const coldAfter = tank.winterForecast(FREEZE_BELOW_C, cooling, heater, FREEZE_HORIZON_MS);
    if (coldAfter === null)
      ctx.error(
        `${label} on ${id}: the water does not go under ${FREEZE_BELOW_C} °C within ${FREEZE_HORIZON_MS / 3_600_000} h at these rates`,
      );
    else ctx.expectFor(p, label, id, at, at + coldAfter + FREEZE_HELD_MS);
  } else ctx.expectFor(p, label, id, at, at);
  tank.winterNight(cooling, heater);
  // Morning: the night ends and the water is as warm as it was (FREEZE_RISK clears at 5 °C).
  ctx.onRestore(() => {
    tank.endWinter();
    tank.setTemperature(before);
  });
};

export const MODBUS_INCIDENTS = {
  fire: {
    model: "MFS-8",
    pool: panels,
    code: "FIRE_ALARM",
    run: (ctx, p, { id, label, at }) => {
      const panel = ctx.fleet.panels.get(id);
      ctx.expectFor(p, label, id, at, at);
      panel?.raiseSmoke(2.5);
      ctx.onRestore(() => {
        panel?.clearAir();
        panel?.reset();
      });
    },
  },
  "hydrant-pressure-low": {
    model: "MFS-8",
    pool: panels,
    code: "HYDRANT_PRESSURE_LOW",
    run: (ctx, p, { id, label, at }) => {
      const panel = ctx.fleet.panels.get(id);
      ctx.expectFor(p, label, id, at, at);
      panel?.setPressure(0.08);
      ctx.onRestore(() => panel?.setPressure(0.32));
    },
  },
  "kiosk-tamper": {
    model: "GK-3",
    pool: kiosks,
    code: "TAMPER",
    run: kioskFault(
      (k) => k.openDoor(),
      (k) => k.closeDoor(),
    ),
  },
  vandalism: {
    model: "GK-3",
    pool: kiosks,
    code: "VANDALISM",
    run: kioskFault(
      (k) => k.tilt(true),
      (k) => k.tilt(false),
    ),
  },
  "paper-low": {
    model: "GK-3",
    pool: kiosks,
    code: "PAPER_LOW",
    run: kioskFault(
      (k) => k.setPaper(5),
      (k) => k.setPaper(100),
    ),
  },
  "tank-drawdown": {
    model: "LV-4",
    pool: tanks,
    // Depends on how far the tank falls: see `drawdownCodes`.
    code: "WATER_LEVEL_LOW",
    run: (ctx, p, { id, label, at }) => {
      const tank = ctx.fleet.tanks.get(id);
      if (!tank) return;
      const rate = p.rate ?? 30;
      const height = tank.tankHeightMm;
      const from = tank.getLevel();
      const to = drawdownTarget(p.to, height);
      const reserve = tank.setPoints().low;
      const critical = CRITICAL_SHARE * height;
      const reach = (mm: number) => at + (Math.max(0, from - mm) / rate) * 1000;
      ctx.expectFor(
        p,
        label,
        id,
        at,
        {
          WATER_LEVEL_LOW: reach(reserve) + LEVEL_LOW_HELD_MS,
          WATER_LEVEL_CRITICAL: reach(critical),
        },
        drawdownCodes(to, reserve, critical),
      );
      tank.drawDown(rate, to);
      if (p.refillAfter !== undefined) ctx.after(reach(to) - at + p.refillAfter, () => tank.refill(rate));
      ctx.onRestore(() => tank.refill(rate));
    },
  },
  "tank-glitch": {
    model: "LV-4",
    pool: tanks,
    code: "none",
    run: (ctx, p, { id, label, at }) => {
      // A failing pressure cell: single polls read 0 or 65535 mm. The datasheet wants a quality
      // flag, not a level alert.
      const tank = ctx.fleet.tanks.get(id);
      ctx.expectFor(p, label, id, at, at);
      for (let g = 0; g < (p.glitches ?? 3); g++) {
        const value = ctx.rng() < 0.5 ? 0 : 0xffff;
        ctx.after(g * 1_000, () => tank?.glitch(value));
      }
    },
  },
  "tank-fault": {
    model: "LV-4",
    pool: tanks,
    code: "FAULT",
    run: (ctx, p, { id, label, at }) => {
      const tank = ctx.fleet.tanks.get(id);
      ctx.expectFor(p, label, id, at, at);
      tank?.setFault(p.fault ?? 1);
      if (p.duration !== undefined) ctx.after(p.duration, () => tank?.setFault(0));
      ctx.onRestore(() => tank?.setFault(0));
    },
  },
  "tank-winter": { model: "LV-4", pool: tanks, code: "none", run: winterNight },
  "tank-freeze": { model: "LV-4", pool: tanks, code: "FREEZE_RISK", run: winterNight },
  "malformed-replies": {
    model: "MFS-8, LV-4 or GK-3",
    pool: (fleet) => [...panels(fleet), ...tanks(fleet), ...kiosks(fleet)],
    // A few bad replies are retried or fail a poll or two: counted rejections, no alert. Three
    // failed polls in a row are DEVICE_LOST (datasheets): a scenario that arms more says so.
    code: "none",
    check: (p, pool, fleet) => {
      for (const id of pool) {
        const tcp = fleet.kiosks.has(id);
        const kinds: readonly string[] = tcp ? TCP_MALFORMED_KINDS : [...RTU_MALFORMED_KINDS, "corrupt-crc"];
        if (p.frame !== undefined && !kinds.includes(p.frame))
          return `${p.frame} breaks ${tcp ? "a serial frame, and" : "an MBAP header, and"} ${id} is on Modbus ${tcp ? "TCP" : "RTU"} (it takes: ${kinds.join(", ")})`;
      }
      return undefined;
    },
    run: (ctx, p, { id, label, at }) => {
      const slave = ctx.fleet.panels.get(id) ?? ctx.fleet.tanks.get(id) ?? ctx.fleet.kiosks.get(id);
      if (!slave || p.frame === undefined) return;
      ctx.expectFor(p, label, id, at, at);
      const n = p.replies ?? 1;
      const frame = p.frame;
      if (frame === "corrupt-crc") slave.faults.corruptCrc = n;
      else slave.faults.malformed[frame as MalformedKind] = n;
      // Not spent by the end of the run (a device polled rarely): its next replies are good again.
      ctx.onRestore(() => {
        if (frame === "corrupt-crc") slave.faults.corruptCrc = 0;
        else slave.faults.malformed[frame as MalformedKind] = 0;
      });
    },
  },
  "bus-silent": {
    model: "RTU bus",
    pool: (fleet) => [...fleet.busSlaves.keys()],
    code: "DEVICE_LOST",
    run: (ctx, p, { id, label, at }) => {
      const slaves = ctx.fleet.busSlaves.get(id) ?? [];
      const devices = ctx.site.rtu.filter((d) => d.bus === id);
      for (const d of devices) ctx.expectFor(p, `${label}:${d.id}`, d.id, at, at);
      for (const s of slaves) s.faults.silent = true;
      const back = () => {
        for (const s of slaves) s.faults.silent = false;
      };
      ctx.onRestore(back);
      if (p.duration) ctx.after(p.duration, back);
    },
  },
} satisfies IncidentTable;

/** tank-drawdown's `to`: mm, or a share of the tank height ("25%"); default half the tank. */
export function drawdownTarget(to: number | string | undefined, heightMm: number): number {
  if (to === undefined) return Math.round(heightMm / 2);
  if (typeof to === "number") return to;
  return Math.round((Number(to.slice(0, -1)) / 100) * heightMm);
}

/**
 * The alerts a tank drawn down to `to` mm must cause (LV-4 datasheet): WATER_LEVEL_LOW under the
 * reserve (the sensor's low set-point), WATER_LEVEL_CRITICAL too under 30 % of the height.
 */
export function drawdownCodes(to: number, reserveMm: number, criticalMm: number): string[] {
  const codes: string[] = [];
  if (to < reserveMm) codes.push("WATER_LEVEL_LOW");
  if (to < criticalMm) codes.push("WATER_LEVEL_CRITICAL");
  return codes.length > 0 ? codes : ["none"];
}
