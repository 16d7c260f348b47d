/**
 * Scenario files: phases on a timeline (incidents, load, disturbances) and
 * what the gateway must answer (which alerts, how many, how fast, nothing
 * else). Validated with zod; an error names the file and the field.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { MALFORMED_KINDS } from "../modbus/slave.js";
import { parseDuration, yamlLines } from "../site.js";

const durationMs = z.union([z.number().nonnegative(), z.string()]).transform((v, ctx) => {
  try {
    return Math.round(parseDuration(v, 0) * 1000);
  } catch {
    ctx.addIssue({ code: "custom", message: `not a duration (e.g. 500ms, 30s, 2m): ${JSON.stringify(v)}` });
    return z.NEVER;
  }
});

/** 0.05 or "5%". */
const share = z.union([z.number().min(0).max(1), z.string().regex(/^\d+(\.\d+)?%$/)]).transform((v) => {
  const n = typeof v === "number" ? v : Number(v.slice(0, -1)) / 100;
  return Math.min(1, n);
});

/** tank-winter / tank-freeze defaults: a night pressed into minutes (the datasheet: "cools slowly"). */
export const WINTER_COOLING_C_PER_MIN = 0.5;
export const WINTER_HEATER_C_PER_MIN = 1.0;
/** GD-2 datasheet: "heartbeats stop for a minute". */
export const POWER_CUT_OUTAGE_MS = 60_000;
/** GD-2 datasheet: POWER_FAIL when `mains` is false "for more than 10 minutes". */
export const POWER_FAIL_AFTER_MS = 600_000;
/** Mains back this close to POWER_FAIL's 10 minutes is refused: heartbeat timing decides it. */
export const POWER_FAIL_MARGIN_MS = 60_000;

const alertCode = z.string().regex(/^[A-Z][A-Z0-9_]*$/, "an alert code such as EMERGENCY_CALL");

const at = { at: durationMs.default(0) };

/**
 * The alert an incident causes, or `none` (bouncing contacts, cooking: nothing must come), or
 * several (a jammed valve: GAS_LEAK and GAS_VALVE_NOT_CLOSED).
 */
const expectField = z.union([alertCode, z.literal("none"), z.array(alertCode).min(1)]).optional();

/** Incidents on devices: each one is matched to the alert it must cause. */
const incident = z.strictObject({
  ...at,
  do: z.enum([
    "press",
    "long-press",
    "fall",
    "tamper",
    "door-held-open",
    "low-battery",
    "bounce",
    "fire",
    "gas-leak",
    "cooking",
    "jammed-valve",
    "valve-fault",
    "tank-drawdown",
    "tank-glitch",
    "tank-fault",
    "tank-winter",
    "tank-freeze",
    "power-cut",
    "bus-silent",
    "hydrant-pressure-low",
    "battery-change",
    "kiosk-tamper",
    "vandalism",
    "paper-low",
    "resident-day",
    "stays-in",
    "malformed-replies",
  ]),
  /**
   * How many devices (distinct ones, not used by an earlier incident where possible): with
   * `targets`, how many of them (default: all listed, never more); without, a seeded pick of
   * the site's devices (default 1). See incidentCount().
   */
  count: z.number().int().min(1).optional(),
  /** Spread of the incidents: "500 residents press within 2 s". */
  within: durationMs.default(0),
  /** Device ids (or bus ids for bus-silent) instead of a seeded pick: all of them are driven unless `count` says fewer. */
  targets: z.array(z.string().min(1)).min(1).optional(),
  /** Press: each resident presses again after 1-4 s (one call, not two). */
  double: z.boolean().default(false),
  /**
   * Press: the base station is offline when it happens and re-sends its backlog after this long,
   * the last message before the outage included (its PUBACK was lost: a repeated seq).
   */
  offlineFor: durationMs.optional(),
  expect: expectField,
  /** This incident's alert must arrive within this long (default: the scenario's `latency.max`). */
  latency: durationMs.optional(),
  /**
   * bus-silent: how long the bus stays silent. cooking: how long the pan stays on at its peak.
   * tank-fault: how long the fault lasts (default: until the end of the run). power-cut: how long
   * the mains stays off, counted from the cut (default: until the end of the run).
   */
  duration: durationMs.optional(),
  /**
   * GD-2, %LEL. cooking: the peak (default 4.5; the datasheet's cooking is 3-6, and it must stay
   * under the detector's low set-point of 10 or it is a leak). gas-leak / jammed-valve: where
   * the leak levels off (default 40).
   */
  peak: z.number().positive().max(100).optional(),
  /**
   * gas-leak / jammed-valve: %LEL per second (default 2, datasheet). tank-drawdown: mm per
   * second the tank falls (default 30, datasheet: fire fighting) and is refilled.
   */
  rate: z.number().positive().optional(),
  /** gas-leak / cooking / jammed-valve: the kitchen is aired this long after the incident (the alert clears). */
  ventilateAfter: durationMs.optional(),
  /**
   * tank-drawdown: the level it is drawn down to, mm or a share of the tank height ("25%").
   * Default 50 % (under the low set-point: WATER_LEVEL_LOW; under 30 % it is WATER_LEVEL_CRITICAL too).
   */
  to: z.union([z.number().int().min(0).max(65_535), z.string().regex(/^\d+(\.\d+)?%$/)]).optional(),
  /** tank-drawdown: the refill starts this long after the tank reached `to` (default: at the end of the run). */
  refillAfter: durationMs.optional(),
  /** tank-glitch: single bad polls (level 0 or 65535 mm) per tank, default 3, one per second. */
  glitches: z.number().int().min(1).max(60).optional(),
  /** tank-fault: the LV-4 fault code (1 pressure cell open circuit ... 4 supply voltage low), default 1. */
  fault: z.number().int().min(1).max(4).optional(),
  /** tank-winter / tank-freeze: the water's temperature when the night begins, °C (default: as it is). */
  from: z.number().min(-20).max(40).optional(),
  /** tank-winter / tank-freeze: how fast the water cools, °C per minute (default 0.5). */
  cooling: z.number().positive().max(10).optional(),
  /**
   * tank-winter / tank-freeze: how fast the anti-freeze heater warms the water while it is on,
   * °C per minute against no cold. tank-winter: more than `cooling` (default 1.0: it holds the water
   * between 4 and 5 °C). tank-freeze: less (default 0: it switches on at 4 °C and gives no heat).
   */
  heater: z.number().min(0).max(10).optional(),
  /** power-cut: how long the detector is silent before it comes back on battery (default 60 s, datasheet). */
  outage: durationMs.optional(),
  /** resident-day: how many days the resident lives (default 1). stays-in: how many days indoors (default 2). */
  days: z.number().int().min(1).max(30).optional(),
  /**
   * resident-day / stays-in: how long a simulated day lasts in real time (default 24h). A welfare
   * period is a day or more: a site configured with a short one (a test) compresses the day alike.
   */
  dayLength: durationMs.optional(),
  /**
   * malformed-replies: what is wrong with the replies (the Modbus simulator's faults, docs/devices.md):
   * on RTU `corrupt-crc`, `noise`; on Modbus TCP `wrong-transaction`, `wrong-protocol`,
   * `wrong-length`; on both `truncate`, `trailing-garbage`, `wrong-unit`, `wrong-function`,
   * `wrong-byte-count`.
   */
  frame: z.enum([...MALFORMED_KINDS, "corrupt-crc"]).optional(),
  /** malformed-replies: how many of the device's next replies (default 1). */
  replies: z.number().int().min(1).max(1000).optional(),
});

/** Fields each incident kind accepts beyond the common ones, so a misplaced one is named, not ignored. */
const INCIDENT_FIELDS: Partial<Record<z.output<typeof incident>["do"], readonly string[]>> = {
  press: ["double", "offlineFor"],
  "long-press": ["double", "offlineFor"],
  fall: ["double", "offlineFor"],
  "bus-silent": ["duration"],
  cooking: ["peak", "duration", "ventilateAfter"],
  "gas-leak": ["peak", "rate", "ventilateAfter"],
  "jammed-valve": ["peak", "rate", "ventilateAfter"],
  "tank-drawdown": ["rate", "to", "refillAfter"],
  "tank-glitch": ["glitches"],
  "tank-fault": ["fault", "duration"],
  "tank-winter": ["from", "cooling", "heater"],
  "tank-freeze": ["from", "cooling", "heater"],
  "power-cut": ["outage", "duration"],
  "resident-day": ["days", "dayLength"],
  "stays-in": ["days", "dayLength"],
  "malformed-replies": ["frame", "replies"],
};
const KIND_FIELDS = [
  "double",
  "offlineFor",
  "duration",
  "peak",
  "rate",
  "ventilateAfter",
  "to",
  "refillAfter",
  "glitches",
  "fault",
  "from",
  "cooling",
  "heater",
  "outage",
  "days",
  "dayLength",
  "frame",
  "replies",
] as const;

const load = z.strictObject({
  ...at,
  do: z.enum(["steady", "ramp", "burst"]),
  /** steady: messages per second over the fleet; ramp: from `rate` to `to`. */
  rate: z.number().positive().optional(),
  to: z.number().positive().optional(),
  duration: durationMs.optional(),
  /** burst: this many messages within `within`. */
  count: z.number().int().positive().optional(),
  within: durationMs.optional(),
  /** Share of the messages replaced by malformed payloads (bad JSON, bad CBOR, wrong types, oversize). */
  malformed: share.default(0),
});

const disturbance = z.strictObject({
  ...at,
  do: z.enum(["churn", "clock-skew", "gateway-restart", "upstream-outage"]),
  /** churn / clock-skew: share of the MQTT devices affected. */
  share: share.optional(),
  /** churn: over how long the disconnections are spread; upstream-outage: how long. */
  duration: durationMs.optional(),
  /** churn: each device stays away this long. Default 3 s. */
  downFor: durationMs.optional(),
  /** clock-skew: device clock minus real time, ms (negative: behind). */
  skewMs: z.number().int().optional(),
});

const phase = z.discriminatedUnion("do", [incident, load, disturbance]).superRefine((p, ctx) => {
  if (
    p.do === "steady" &&
    ((p as { rate?: number }).rate === undefined || !(p as { duration?: number }).duration)
  )
    ctx.addIssue({ code: "custom", message: "steady needs rate and duration" });
  if (
    p.do === "ramp" &&
    ((p as { rate?: number }).rate === undefined ||
      (p as { to?: number }).to === undefined ||
      !(p as { duration?: number }).duration)
  )
    ctx.addIssue({ code: "custom", message: "ramp needs rate (from), to and duration" });
  if (
    p.do === "burst" &&
    ((p as { count?: number }).count === undefined || (p as { within?: number }).within === undefined)
  )
    ctx.addIssue({ code: "custom", message: "burst needs count and within" });
  if ((p.do === "churn" || p.do === "clock-skew") && (p as { share?: number }).share === undefined)
    ctx.addIssue({ code: "custom", message: `${p.do} needs share` });
  if (p.do === "clock-skew" && (p as { skewMs?: number }).skewMs === undefined)
    ctx.addIssue({ code: "custom", message: "clock-skew needs skewMs" });
  if ((p.do === "resident-day" || p.do === "stays-in") && (p as { dayLength?: number }).dayLength === 0)
    ctx.addIssue({ code: "custom", path: ["dayLength"], message: "a day lasts more than 0 s" });
  if (p.do === "malformed-replies" && (p as { frame?: string }).frame === undefined)
    ctx.addIssue({
      code: "custom",
      path: ["frame"],
      message: "malformed-replies needs frame (e.g. truncate)",
    });
  if (p.do === "bus-silent" && !(p as { duration?: number }).duration)
    ctx.addIssue({ code: "custom", message: "bus-silent needs duration" });
  if (isIncidentKind(p.do)) {
    // A user who lists three targets means all three: `count` may pick fewer of them, never more.
    const { targets, count } = p as IncidentPhase;
    if (targets !== undefined) {
      const seen = new Set<string>();
      for (const [k, id] of targets.entries()) {
        if (seen.has(id))
          ctx.addIssue({
            code: "custom",
            path: ["targets", k],
            message: `${id} is listed twice: each target is a distinct device`,
          });
        seen.add(id);
      }
      if (count !== undefined && count > seen.size)
        ctx.addIssue({
          code: "custom",
          path: ["count"],
          message: `count ${count} is more than the ${seen.size} target${seen.size === 1 ? "" : "s"} listed: list more targets, or leave count out to drive all of them`,
        });
    }
    const allowed = INCIDENT_FIELDS[p.do as IncidentPhase["do"]] ?? [];
    for (const f of KIND_FIELDS)
      if (
        (p as Record<string, unknown>)[f] !== undefined &&
        !(f === "double" && (p as { double?: boolean }).double === false) &&
        !allowed.includes(f)
      )
        ctx.addIssue({
          code: "custom",
          path: [f],
          message: `not a field of ${p.do}${allowed.length ? ` (it takes: ${allowed.join(", ")})` : ""}`,
        });
  }
  const ip = p as IncidentPhase;
  // The GD-2's own low set-point (datasheet, factory 10 %LEL): cooking at or over it is a leak.
  if (p.do === "cooking" && ip.peak !== undefined && ip.peak >= 10)
    ctx.addIssue({
      code: "custom",
      path: ["peak"],
      message: "cooking stays under the detector's low set-point (10 %LEL): use gas-leak for more",
    });
  // A heater that keeps up holds the water at 4-5 °C (nothing); one that cannot lets it freeze.
  if (p.do === "tank-winter" || p.do === "tank-freeze") {
    const cooling = ip.cooling ?? WINTER_COOLING_C_PER_MIN;
    const heater = ip.heater ?? (p.do === "tank-winter" ? WINTER_HEATER_C_PER_MIN : 0);
    if (p.do === "tank-winter" && heater <= cooling)
      ctx.addIssue({
        code: "custom",
        path: ["heater"],
        message: `a heater of ${heater} °C/min does not keep up with ${cooling} °C/min of cold: that is tank-freeze`,
      });
    if (p.do === "tank-freeze" && heater >= cooling)
      ctx.addIssue({
        code: "custom",
        path: ["heater"],
        message: `a heater of ${heater} °C/min keeps up with ${cooling} °C/min of cold: that is tank-winter`,
      });
    if (p.do === "tank-winter" && ip.from !== undefined && ip.from < 4)
      ctx.addIssue({
        code: "custom",
        path: ["from"],
        message: "a night whose water starts under 4.0 °C is a freeze risk already: use tank-freeze",
      });
  }
  // GD-2 datasheet: the power comes back on battery (`mains` false) after the outage.
  if (p.do === "power-cut") {
    const outage = ip.outage ?? POWER_CUT_OUTAGE_MS;
    if (outage <= 0)
      ctx.addIssue({ code: "custom", path: ["outage"], message: "a power cut lasts more than 0 s" });
    if (ip.duration !== undefined && ip.duration <= outage)
      ctx.addIssue({
        code: "custom",
        path: ["duration"],
        message: `the mains must stay off longer than the outage (${outage / 1000} s): the detector comes back on battery`,
      });
    // POWER_FAIL after 10 minutes on battery: mains back within a minute of that is too close to call.
    const onBattery = ip.duration === undefined ? Number.POSITIVE_INFINITY : ip.duration - outage;
    if (Math.abs(onBattery - POWER_FAIL_AFTER_MS) < POWER_FAIL_MARGIN_MS)
      ctx.addIssue({
        code: "custom",
        path: ["duration"],
        message: `${onBattery / 1000} s on battery is within ${POWER_FAIL_MARGIN_MS / 1000} s of POWER_FAIL's 10 minutes: too close to call either way`,
      });
  }
  // The leak rises `rate` %LEL a second from 0 (datasheet: 2) and reaches the low set-point
  // (10 %LEL, the alarm) after ceil(10 / rate) s: aired by then, it never alarms.
  if ((p.do === "gas-leak" || p.do === "jammed-valve") && ip.ventilateAfter !== undefined) {
    const codes =
      ip.expect === undefined ? ["GAS_LEAK"] : typeof ip.expect === "string" ? [ip.expect] : ip.expect;
    const rate = ip.rate ?? 2;
    const alarmAfterMs = Math.ceil(10 / rate) * 1000;
    if (codes.includes("GAS_LEAK") && ip.ventilateAfter <= alarmAfterMs)
      ctx.addIssue({
        code: "custom",
        path: ["ventilateAfter"],
        message: `${ip.ventilateAfter / 1000} s airs the kitchen before the leak reaches the alarm level (10 %LEL at ${rate} %LEL/s: ${alarmAfterMs / 1000} s), yet GAS_LEAK is expected: ventilate later, or expect none`,
      });
  }
  if ((p.do === "gas-leak" || p.do === "jammed-valve") && ip.peak !== undefined && ip.peak < 10)
    ctx.addIssue({
      code: "custom",
      path: ["peak"],
      message: `a ${p.do} reaches the detector's low set-point (10 %LEL) at least: use cooking for less`,
    });
});

function isIncidentKind(d: string): boolean {
  return (incident.shape.do.options as readonly string[]).includes(d);
}

export const scenarioSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9-]+$/, "lower case, digits and dashes"),
    description: z.string().min(1),
    /**
     * What the simulator cannot do on its own: `gateway-control` (restart the
     * gateway: run with --gateway-cmd), `upstream-harness` (cut the gateway's
     * upstream broker: a test harness must do it), `modbus` (fire stations on a bus).
     */
    needs: z.array(z.enum(["gateway-control", "upstream-harness", "modbus"])).default([]),
    /** How it is run, for --list-scenarios and the report. */
    howToRun: z.string().optional(),
    /** Smallest site it makes sense on, in households: a --scale or --config site below it is refused. */
    minHouseholds: z.number().int().min(1).optional(),
    /**
     * Largest site it makes sense on, for --scale N: a scenario that shortens the welfare period
     * (`scale.welfarePeriod`) must drive every household's door, or the ones it leaves alone would
     * rightly raise WELFARE_CHECK.
     */
    maxHouseholds: z.number().int().min(1).optional(),
    /**
     * What `--scale N` adds to the households for this scenario when the command line does
     * not say: GD-2 detectors in the first `kitchens` households, LV-4 tanks on the RS-485 bus;
     * and the welfare period the site is written with (default 24 h), so that a run of minutes
     * can see WELFARE_CHECK (time compressed, as a phase's `dayLength` is).
     */
    scale: z
      .strictObject({
        kitchens: z.number().int().min(0).max(100_000).default(0),
        tanks: z.number().int().min(0).max(200).default(0),
        welfarePeriod: durationMs.optional(),
      })
      .default({ kitchens: 0, tanks: 0 }),
    phases: z.array(phase).min(1),
    /** After the last phase, wait this long for late alerts. */
    settle: durationMs.default(10_000),
    latency: z
      .strictObject({
        p50: durationMs.optional(),
        p99: durationMs.optional(),
        max: durationMs.default(10_000),
      })
      .default({ max: 10_000 }),
    /** Alerts nobody expected on the simulator's devices: `fail` (default) or allowed codes. */
    allowUnexpected: z.array(alertCode).default([]),
  })
  .superRefine((s, ctx) => {
    const usesRestart = s.phases.some((p) => p.do === "gateway-restart");
    if (usesRestart && !s.needs.includes("gateway-control"))
      ctx.addIssue({
        code: "custom",
        path: ["needs"],
        message: "a gateway-restart phase needs gateway-control",
      });
    const usesUpstream = s.phases.some((p) => p.do === "upstream-outage");
    if (usesUpstream && !s.needs.includes("upstream-harness"))
      ctx.addIssue({
        code: "custom",
        path: ["needs"],
        message: "an upstream-outage phase needs upstream-harness",
      });
  });

export type Scenario = z.output<typeof scenarioSchema>;
export type Phase = Scenario["phases"][number];
export type IncidentPhase = z.output<typeof incident>;
export type LoadPhase = z.output<typeof load>;
export type DisturbancePhase = z.output<typeof disturbance>;

export class ScenarioError extends Error {}

export function isIncident(p: Phase): p is IncidentPhase {
  return incident.shape.do.options.includes(p.do as IncidentPhase["do"]);
}
/**
 * How many devices an incident drives: `count`, else every listed target, else one seeded pick
 * (the schema refuses a `count` over the targets listed).
 */
export function incidentCount(p: IncidentPhase): number {
  return p.count ?? p.targets?.length ?? 1;
}

export function isLoad(p: Phase): p is LoadPhase {
  return p.do === "steady" || p.do === "ramp" || p.do === "burst";
}

/** The shipped scenarios: <package>/sim/scenarios/*.yaml (read from the package, not from dist). */
export function scenariosDir(): string {
  // dist/sim/scenario/schema.js and sim/scenario/schema.ts both reach <package>/sim/scenarios.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const candidate = join(dir, "sim", "scenarios");
    if (existsSync(candidate) && existsSync(join(dir, "package.json"))) return candidate;
    dir = dirname(dir);
  }
  return resolve("sim/scenarios");
}

export function listScenarios(): Array<{ name: string; file: string; scenario: Scenario }> {
  const dir = scenariosDir();
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .map((f) => {
      const file = join(dir, f);
      return { name: basename(f, ".yaml"), file, scenario: loadScenarioFile(file) };
    });
}

/** Where a field of a scenario file is: its line, when known. */
export type ScenarioLines = (path: readonly PropertyKey[]) => number | undefined;

/** A shipped name (`smoke-test`) or a file path; `lineOf` for the refusals a run makes against its site. */
export function loadScenario(nameOrFile: string): {
  file: string;
  scenario: Scenario;
  lineOf: ScenarioLines;
} {
  const file = /[/\\]|\.ya?ml$/.test(nameOrFile) ? nameOrFile : join(scenariosDir(), `${nameOrFile}.yaml`);
  if (!existsSync(file)) {
    const known = readdirSync(scenariosDir())
      .filter((f) => f.endsWith(".yaml"))
      .map((f) => basename(f, ".yaml"));
    throw new ScenarioError(`no scenario ${nameOrFile} (shipped: ${known.join(", ")}; or give a file path)`);
  }
  return { file, ...readScenarioFile(file) };
}

/** `lineOf`: the line of a field in the file's text, when the scenario came from one. */
export function parseScenario(
  raw: unknown,
  file: string,
  lineOf: (path: readonly PropertyKey[]) => number | undefined = () => undefined,
): Scenario {
  const r = scenarioSchema.safeParse(raw);
  if (!r.success) {
    const lines = r.error.issues.map((i) => {
      const line = lineOf(i.path);
      return `${file}${line ? `:${line}` : ""}: ${i.path.join(".") || "(top)"}: ${i.message}`;
    });
    throw new ScenarioError(lines.join("\n"));
  }
  return r.data;
}

export function loadScenarioFile(file: string): Scenario {
  return readScenarioFile(file).scenario;
}

function readScenarioFile(file: string): { scenario: Scenario; lineOf: ScenarioLines } {
  let raw: unknown;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
    raw = parseYaml(text);
  } catch (err) {
    throw new ScenarioError(`${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const lineOf = yamlLines(text);
  return { scenario: parseScenario(raw, file, lineOf), lineOf };
}
