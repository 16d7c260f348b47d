/**
 * A device profile written as data (YAML, in the site file's `deviceProfiles`
 * or a file beside it): an integrator's Modbus or MQTT JSON device without
 * code. This is its format (docs/devices.md lists every key); compile.ts turns
 * a valid one into the same profile interface the code profiles implement.
 * Unknown keys are errors, and every reference (a point an alarm reads, a bit
 * of a bitfield, a setting) is checked here, so a typo is named with its path.
 */
import { z } from "zod";
import { parseDuration } from "../../core/index.js";
import { WORD_ORDERS } from "../modbus-decode.js";

const name = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_]{0,31}$/, "must be 1 to 32 letters, digits or _ (starting with a letter)");

/** Model names appear in topics (`linli/<site>/telemetry/<model>/<id>`). */
export const declaredModelName = z
  .string()
  .regex(/^[a-z][a-z0-9-]{1,31}$/, "must be 2 to 32 characters of a-z 0-9 - (starting with a letter)");

const alertCode = z
  .string()
  .regex(/^[A-Z][A-Z0-9_]{1,39}$/, "must be UPPER_SNAKE_CASE, e.g. WATER_LEVEL_LOW (it is a topic level)");

const priority = z.union([z.literal(1), z.literal(2), z.literal(3), z.literal(4)]);

const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const ms = parseDuration(v);
  if (ms === null) {
    ctx.addIssue({
      code: "custom",
      message: `expected a duration such as "30s", "10m" or "250ms", got ${JSON.stringify(v)}`,
    });
    return z.NEVER;
  }
  return ms;
});

const positiveDuration = duration.refine((ms) => ms > 0, "must be more than 0");

const ratioOf = z.strictObject({ ratio: z.number().positive(), of: name });

/**
 * A limit that is the value of another point or `modbus.reads` register of the same device (the
 * LV-4's low set-point, a holding register), used while it is read and within `min`..`max`
 * (numbers or names of numeric points, inclusive); otherwise (never read, its read failing
 * since the start, out of range) the `else` limit.
 */
const fromPoint = z.strictObject({
  point: name,
  min: z.union([z.number(), name]).optional(),
  max: z.union([z.number(), name]).optional(),
  else: z.union([z.number(), ratioOf]),
});
export type FromPoint = z.output<typeof fromPoint>;

/**
 * A limit: a number, a device setting, a fraction of another point (30 % of the tank height), or
 * the value of another point (`fromPoint`).
 */
const limit = z.union([z.number(), z.strictObject({ setting: name }), ratioOf, fromPoint]);
export type Limit = z.output<typeof limit>;

const POINT_TYPES = ["uint16", "int16", "uint32", "int32", "float32", "bitfield", "enum"] as const;

const modbusPoint = z.strictObject({
  name,
  address: z.number().int().min(0).max(0xffff),
  type: z.enum(POINT_TYPES),
  wordOrder: z.enum(WORD_ORDERS as [string, ...string[]]).optional(),
  scale: z.number().optional(),
  offset: z.number().optional(),
  unit: z.string().optional(),
  bits: z.record(name, z.number().int().min(0).max(15)).optional(),
  values: z.record(z.string().regex(/^\d+$/, "enum keys are register values"), z.string()).optional(),
  /** An identity register (model code): a reply with another value is refused. */
  expect: z.number().int().optional(),
  /** Plausible range: a reading outside is refused (counted), not alerted on. */
  min: z.number().optional(),
  max: z.number().optional(),
  /** Publish it as telemetry (bitfields: one boolean per flag). Default true. */
  metric: z.boolean().default(true),
  /**
   * Not believed while another point of the poll holds one of these values (a fault code naming
   * this reading's sensor): quality `suspect`, and the alarms on it hold as they are.
   */
  unreliableWhen: z
    .strictObject({ point: name, oneOf: z.array(z.union([z.number(), z.string()])).min(1) })
    .optional(),
});

/**
 * One register the poll does not cover (a set-point in a holding register beside an input-register
 * poll), read after the device's first good poll, every `every`, and at once after a command
 * writes it. A limit uses it by name (`{ point: <name>, ... }`); it is no telemetry.
 */
const modbusRead = z.strictObject({
  name,
  address: z.number().int().min(0).max(0xffff),
  /** holding: fn 0x03 (default); input: fn 0x04. */
  registers: z.enum(["input", "holding"]).default("holding"),
  type: z.enum(["uint16", "int16"]).default("uint16"),
  scale: z.number().optional(),
  offset: z.number().optional(),
  unit: z.string().optional(),
  every: duration.default(600_000),
});

const mqttField = z.strictObject({
  name,
  /** Dotted path in the JSON payload, e.g. "data.level". */
  path: z.string().regex(/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/, 'must be a dotted path such as "data.level"'),
  type: z.enum(["number", "integer", "boolean", "string"]),
  unit: z.string().optional(),
  min: z.number().optional(),
  max: z.number().optional(),
  /** A message without it is refused; false: it may be absent (alarms on it keep their state). */
  required: z.boolean().default(true),
  metric: z.boolean().default(true),
  /**
   * Not believed while another field holds one of these values (a fault code naming this reading's
   * sensor), as a Modbus point's: that field's last value stands in a message without it.
   */
  unreliableWhen: z
    .strictObject({ point: name, oneOf: z.array(z.union([z.number(), z.string(), z.boolean()])).min(1) })
    .optional(),
});

const conditionFields = {
  /** Required but in an `all:` condition (checkReferences says so with its path). */
  point: name.optional(),
  /** A bit: a flag name of a bitfield point, or a bit number of an integer point. */
  bit: z.union([name, z.number().int().min(0).max(31)]).optional(),
  below: limit.optional(),
  above: limit.optional(),
  /** Back across the limit by this much before the alarm clears (hysteresis). */
  deadband: z.number().min(0).optional(),
  /**
   * Instead of `deadband`: where a raised alarm clears, a limit ("clears when `lel` is under 5 %LEL"
   * whatever the site's threshold; "clearing at 5.0 °C"). On the limit's own side, it holds no more.
   */
  clearAt: limit.optional(),
  /**
   * The limit itself counts as crossed ("at or above 10 %LEL", GD-2), and a raised alarm clears
   * only once strictly past the deadband's end ("clears when under 5"). Default: strictly beyond.
   */
  inclusive: z.boolean().optional(),
  equals: z.union([z.number(), z.string(), z.boolean()]).optional(),
  /** Holds while the point has a value other than this ("valve is not closed"); never before it has one. */
  notEquals: z.union([z.number(), z.string(), z.boolean()]).optional(),
};

/**
 * One part of an `all:` condition: a bit or an (in)equality of a point, or another alarm of the
 * profile (`alarm: CODE`, holding while any alarm of that code holds, before its delays). A
 * threshold (below/above, with its deadband) is an alarm of its own, named here by its code.
 * One object with every key optional, not a union: a typo is named as an unknown field.
 */
const part = z.strictObject({
  alarm: alertCode.optional(),
  point: name.optional(),
  bit: conditionFields.bit,
  equals: conditionFields.equals,
  notEquals: conditionFields.notEquals,
});
export type ConditionPart = z.output<typeof part>;

/** A single condition: a point's bit, (in)equality or limit. */
export type Condition = Omit<z.output<z.ZodObject<typeof conditionFields>>, "point"> & { point: string };

/**
 * `when:`, a condition, or conditions joined by AND (`all:`, the GD-2's "a GAS_LEAK whose valve is
 * not closed", the GK-3's "cabinet door open while in service"). An alarm's on-delay then runs from
 * the onset of the first part: "not closed within 20 s" are 20 s of the leak. checkReferences makes
 * sure `point` is given, or `all` alone.
 */
const when = z
  .strictObject({ ...conditionFields, all: z.array(part).min(2).max(8).optional() })
  .transform((w) => w as Condition | { all: ConditionPart[] });

/**
 * A condition that holds a raised alert of the code (`alarm.holdWhile`): a limit of a point
 * (below/above, `inclusive` for "at or"), or an (in)equality, with the words operators read in
 * `causes` while it alone holds the alert.
 */
const holdWhile = z.strictObject({
  point: name,
  below: limit.optional(),
  above: limit.optional(),
  inclusive: z.boolean().optional(),
  equals: z.union([z.number(), z.string(), z.boolean()]).optional(),
  notEquals: z.union([z.number(), z.string(), z.boolean()]).optional(),
  cause: z.string().optional(),
});
export type HoldWhile = z.output<typeof holdWhile>;

/** A value a point holds (`equals`) or does not (`notEquals`); exactly one (checkReferences). */
const pointIs = z.strictObject({
  point: name,
  equals: z.union([z.number(), z.string(), z.boolean()]).optional(),
  notEquals: z.union([z.number(), z.string(), z.boolean()]).optional(),
});
export type PointIs = z.output<typeof pointIs>;

/**
 * The highest value of a numeric point while the code's condition holds (the incident: from the
 * message that began it), in the alert's `detail` as `as` ("unknown" before a believed value; the
 * GD-2's peak %LEL). A value not believed (`unreliableWhen`) does not count; with `suspectFrom`,
 * one from a message in which that holds (the detector's own alarm) stands in while no value was
 * believed, and the detail says so with `<as>Suspect: true` (false otherwise).
 */
const peak = z.strictObject({
  point: name,
  as: name,
  suspectFrom: z
    .strictObject({ point: name, equals: z.union([z.number(), z.string(), z.boolean()]) })
    .optional(),
});
export type PeakDoc = z.output<typeof peak>;

/**
 * A command of the profile the gateway sends the device itself once per incident (the code's
 * condition beginning), unless `unless` holds of the point's last value (the valve already
 * closed); only while `setting` (a 0/1 setting) is 1, when given. The alert's `detail` says
 * `<as>: true` once sent (`as` defaults to the setting's name; false in an incident it was not
 * sent in) and `<as>Queued`: true while the command waits for a device that is away. `sent` and
 * `queued` are what operators read of each (in the site's language, as `title`), else the
 * gateway's words naming the command.
 */
const autoCommand = z.strictObject({
  name,
  unless: pointIs.optional(),
  setting: name.optional(),
  as: name.optional(),
  sent: z.string().max(100).optional(),
  queued: z.string().max(100).optional(),
});
export type AutoCommandDoc = z.output<typeof autoCommand>;

const alarm = z.strictObject({
  code: alertCode,
  priority,
  when,
  /**
   * The alert of this code, once raised (by any alarm of the code), also holds while this holds,
   * and clears only when neither does: a clear condition of the alert, not of one cause (the
   * GD-2's "clears when `lel` is under 5 %LEL and `level` is `none`", whichever raised it). It
   * raises nothing. Given on one alarm of a code; a message without its point, or with the point
   * not believed (`unreliableWhen`), leaves it as it was.
   */
  holdWhile: holdWhile.optional(),
  /** The incident's peak of a point in the alert's detail; given on one alarm of a code. */
  peak: peak.optional(),
  /** A command the gateway sends itself when the code's condition begins; on one alarm of a code. */
  command: autoCommand.optional(),
  /** The text operators read in `causes`. Default: the condition in words. */
  cause: z.string().optional(),
  /** What operators read as the alert's name and what they should do, in the site's language (site.locale). */
  title: z.string().max(64).optional(),
  action: z.string().max(200).optional(),
  /** An enum point whose value is appended to the cause (a fault code's meaning). */
  causeFrom: name.optional(),
  /** A duration, or a per-device setting in seconds (the DS-10's hold time, "default 600 s; per device"). */
  onDelay: z.union([duration, z.strictObject({ setting: name })]).optional(),
  offDelay: duration.optional(),
  /** Escalate an unacknowledged alert on the P1 schedule while publishing it at its own priority. */
  escalateAs: z.literal(1).optional(),
  /** Another alarm of this profile that replaces this one while it is active. */
  unless: alertCode.optional(),
});

const setting = z.strictObject({
  description: z.string().optional(),
  unit: z.string().optional(),
  /** Used when a device does not set it: a number, a fraction of a point, or another point's value. */
  default: z.union([z.number(), ratioOf, fromPoint]).optional(),
  min: z.number().optional(),
  max: z.number().optional(),
});

/**
 * The command moves something on site (a valve, a sensor's set-point, a self-test that blinds it):
 * the console asks the operator to confirm it, as the code profiles' `actuates` (devices/profile.ts).
 */
const actuates = z.boolean().default(false);

const modbusCommand = z.union([
  z.strictObject({ coil: z.number().int().min(0).max(0xffff), value: z.boolean().default(true), actuates }),
  z.strictObject({
    register: z.number().int().min(0).max(0xffff),
    /** A fixed value, or "request": the operator's `{"value": N}`, checked against min..max. */
    value: z.union([z.number().int().min(0).max(0xffff), z.literal("request")]),
    min: z.number().int().min(0).max(0xffff).optional(),
    max: z.number().int().min(0).max(0xffff).optional(),
    actuates,
  }),
]);

const spike = z.strictObject({
  point: name,
  /** A change from the last believed value larger than this between two polls is suspect ... */
  maxJump: limit,
  /**
   * ... or, given, larger than `maxJump` per this much time between the two polls (a rate: after a
   * gap in the polls, or at a slower poll, a bigger change is believable) ...
   */
  per: positiveDuration.optional(),
  /** ... until it has persisted this long. */
  persist: duration,
  /** A value over `max` or under `min` is suspect whatever the time, and never believed. */
  min: limit.optional(),
  max: limit.optional(),
});

const bitRef = z.strictObject({ point: name, bit: z.union([name, z.number().int().min(0).max(31)]) });

export const declaredProfileSchema = z
  .strictObject({
    model: declaredModelName,
    description: z.string().optional(),
    transport: z.enum(["modbus", "mqtt"]),
    /** DEVICE_LOST priority. */
    lostPriority: priority.default(3),
    modbus: z
      .strictObject({
        /** How its devices are reached: rtu, a slave on a serial bus (bus:, unit:); tcp, a Modbus TCP endpoint (host:). */
        link: z.enum(["rtu", "tcp"]).default("rtu"),
        /** input: fn 0x04 (read-only measurements); holding: fn 0x03. */
        registers: z.enum(["input", "holding"]).default("holding"),
        maxGap: z.number().int().min(0).max(16).default(0),
        missedPollsForLost: z.number().int().min(1).max(100).default(3),
        /** The devices' default poll interval (a device's `pollInterval` overrides it). */
        pollInterval: positiveDuration.default(2000),
        /** "Answers within N ms of the end of a request": the line budget's turnaround. */
        turnaround: positiveDuration.optional(),
        /** "Allow at least N ms before calling a request lost": a bus timeout under it is warned about. */
        minReplyTimeout: positiveDuration.optional(),
        /** tcp: the device closes a connection idle this long (the gateway replaces it before). */
        idleClose: positiveDuration.optional(),
        points: z.array(modbusPoint).min(1),
        /** Registers read beside the poll, for limits (`{ point: <name>, ... }`). */
        reads: z.array(modbusRead).default([]),
      })
      .optional(),
    mqtt: z
      .strictObject({
        /** Uplink topic; "{id}" is the device id. */
        uplink: z.string().refine((t) => t.includes("{id}"), 'must contain "{id}"'),
        downlink: z
          .string()
          .refine((t) => t.includes("{id}"), 'must contain "{id}"')
          .optional(),
        maxPayloadBytes: z.number().int().min(16).max(65_536).default(4096),
        /** "Encoding: JSON only": a CBOR payload is refused (counted `unknown-encoding`). Default false: JSON or CBOR. */
        jsonOnly: z.boolean().default(false),
        /** The devices' default heartbeat interval (a device's `heartbeatInterval` overrides it). */
        heartbeatInterval: positiveDuration.default(300_000),
        /** Lost after this many silent heartbeat intervals, plus `alerts.lostGrace` when `plusGrace`. */
        lostAfter: z
          .strictObject({
            heartbeats: z.number().int().min(1).max(100),
            plusGrace: z.boolean().default(true),
          })
          .default({ heartbeats: 2, plusGrace: true }),
        /** Field path of the device's message counter (duplicates are dropped); absent: none. */
        seq: z.string().optional(),
        /** Field path of the device's clock, epoch ms. */
        time: z.string().optional(),
        fields: z.array(mqttField).min(1),
        /**
         * Message kinds (the GD-2's `t`: `hb`, `alarm`, `valve`, `reply`) and the fields each
         * carries: a message of a listed kind without one of them is refused (`bad-field`, counted),
         * as the code profile refuses a heartbeat without `fault`. The fields stay `required: false`
         * (another kind does not carry them). `others: refuse`: a kind not listed is refused too.
         */
        kinds: z
          .strictObject({
            /** A string or integer field naming the kind. */
            field: name,
            require: z.record(z.string().min(1), z.array(name).min(1)),
            others: z.enum(["accept", "refuse"]).default("accept"),
          })
          .optional(),
        /**
         * The device's answer to a command (the GD-2's `reply`): a message in which `when` holds is
         * one, its `id`, `command` and `result` string fields published as the command's second
         * result; `ok` is the result that means done.
         */
        reply: z
          .strictObject({
            when: z.strictObject({ point: name, equals: z.union([z.number(), z.string(), z.boolean()]) }),
            id: name,
            command: name,
            result: name,
            ok: z.string(),
          })
          .optional(),
      })
      .optional(),
    settings: z.record(name, setting).default({}),
    /**
     * A message or poll in which this holds is resident activity for the household's welfare check
     * (a door opened, a valve turned by hand); without it, none is. A bit or an equality.
     */
    activityWhen: z
      .strictObject({
        point: name,
        bit: z.union([name, z.number().int().min(0).max(31)]).optional(),
        equals: z.union([z.number(), z.string(), z.boolean()]).optional(),
      })
      .optional(),
    /** While this bit is set the readings are not real: marked (`testing`), and no value alarm changes. */
    testWhile: bitRef.optional(),
    /**
     * A message or poll in which this holds raises its alerts suppressed by design: published,
     * marked `test` or `maintenance`, never paged nor escalated (the MFS-8's test-mode bit, a GK-3
     * in maintenance). A bit or an equality.
     */
    suppressWhen: z
      .strictObject({
        point: name,
        bit: z.union([name, z.number().int().min(0).max(31)]).optional(),
        equals: z.union([z.number(), z.string(), z.boolean()]).optional(),
        as: z.enum(["test", "maintenance"]),
      })
      .optional(),
    spikes: z.array(spike).default([]),
    alarms: z.array(alarm).default([]),
    commands: z.record(name, z.unknown()).default({}).meta({
      description:
        'Operator commands by name: Modbus {coil: N, value: true|false} or {register: N, value: N | "request", min, max}; MQTT the JSON object sent on the downlink ("{id}": the request\'s id). Either may say actuates: true (default false): it moves something on site and the console asks to confirm it (not sent to an MQTT device)',
    }),
  })
  .superRefine(checkReferences);

export type DeclaredProfileDoc = z.output<typeof declaredProfileSchema>;
export type ModbusCommandDoc = z.output<typeof modbusCommand>;
export const modbusCommandSchema = modbusCommand;

type Ctx = z.core.$RefinementCtx;

/** Every name a profile refers to must exist, with the right kind. */
function checkReferences(p: z.input<typeof declaredProfileSchema> & Record<string, unknown>, ctx: Ctx): void {
  const issue = (path: (string | number)[], message: string) =>
    ctx.addIssue({ code: "custom", path, message });
  const section = p.transport === "modbus" ? p.modbus : p.mqtt;
  if (!section) {
    issue([p.transport], `a ${p.transport} profile needs a "${p.transport}:" section`);
    return;
  }
  const other = p.transport === "modbus" ? "mqtt" : "modbus";
  if (p[other] !== undefined) issue([other], `a ${p.transport} profile has no "${other}:" section`);
  if (p.transport === "modbus" && p.modbus?.idleClose !== undefined && p.modbus.link !== "tcp")
    issue(["modbus", "idleClose"], "idleClose applies to link: tcp only");

  const points = new Map<
    string,
    { type: string; bits?: Record<string, number>; values?: Record<string, string>; read?: true }
  >();
  if (p.transport === "modbus" && p.modbus) {
    p.modbus.points.forEach((pt, i) => {
      if (points.has(pt.name)) issue(["modbus", "points", i, "name"], `duplicate point "${pt.name}"`);
      points.set(pt.name, { type: pt.type, bits: pt.bits, values: pt.values });
      const wide = pt.type === "uint32" || pt.type === "int32" || pt.type === "float32";
      if (pt.wordOrder !== undefined && !wide)
        issue(["modbus", "points", i, "wordOrder"], "wordOrder applies to uint32, int32 and float32 only");
      if (pt.type === "bitfield" && !pt.bits) issue(["modbus", "points", i], "a bitfield needs bits:");
      if (pt.type !== "bitfield" && pt.bits) issue(["modbus", "points", i, "bits"], "bits: is for bitfields");
      if (pt.type === "enum" && !pt.values) issue(["modbus", "points", i], "an enum needs values:");
      if (
        (pt.type === "bitfield" || pt.type === "enum") &&
        (pt.scale !== undefined || pt.offset !== undefined)
      )
        issue(["modbus", "points", i], `scale and offset do not apply to ${pt.type}`);
    });
  }
  if (p.transport === "modbus" && p.modbus) {
    (p.modbus.reads ?? []).forEach((r, i) => {
      if (points.has(r.name))
        issue(["modbus", "reads", i, "name"], `"${r.name}" is already the name of a point or read`);
      points.set(r.name, { type: r.type ?? "uint16", read: true });
    });
  }
  if (p.transport === "mqtt" && p.mqtt) {
    p.mqtt.fields.forEach((f, i) => {
      if (points.has(f.name)) issue(["mqtt", "fields", i, "name"], `duplicate field "${f.name}"`);
      points.set(f.name, { type: f.type });
    });
  }
  const numeric = (t: string) => !["bitfield", "enum", "boolean", "string"].includes(t);
  /** A `modbus.reads` register is not in the polled sample: only a limit (`limit` true) may use it. */
  const checkPoint = (path: (string | number)[], n: string, want?: "numeric", limit = false): boolean => {
    const pt = points.get(n);
    if (!pt) {
      issue(path, `unknown point "${n}" (known: ${[...points.keys()].join(", ")})`);
      return false;
    }
    if (pt.read && !limit) {
      issue(path, `"${n}" is a register of modbus.reads: only a limit can use it`);
      return false;
    }
    if (want === "numeric" && !numeric(pt.type)) {
      issue(path, `point "${n}" is ${pt.type}, not a number`);
      return false;
    }
    return true;
  };
  const settings = p.settings ?? {};
  const checkLimit = (path: (string | number)[], l: unknown) => {
    if (typeof l !== "object" || l === null) return;
    if ("setting" in l && typeof l.setting === "string" && !(l.setting in settings))
      issue([...path, "setting"], `unknown setting "${l.setting}" (declare it under settings:)`);
    if ("of" in l && typeof l.of === "string") checkPoint([...path, "of"], l.of, "numeric", true);
    if ("point" in l && typeof l.point === "string") {
      checkPoint([...path, "point"], l.point, "numeric", true);
      for (const k of ["min", "max"] as const) {
        const b = (l as { min?: unknown; max?: unknown })[k];
        if (typeof b === "string") checkPoint([...path, k], b, "numeric", true);
      }
      if ("else" in l) checkLimit([...path, "else"], l.else);
    }
  };
  const checkBit = (path: (string | number)[], ref: { point: string; bit?: string | number }) => {
    if (!checkPoint([...path, "point"], ref.point)) return;
    const pt = points.get(ref.point)!;
    if (typeof ref.bit === "string") {
      if (pt.type !== "bitfield")
        issue([...path, "bit"], `point "${ref.point}" is not a bitfield: give a bit number`);
      else if (!(ref.bit in (pt.bits ?? {})))
        issue([...path, "bit"], `bitfield "${ref.point}" has no flag "${ref.bit}"`);
    } else if (typeof ref.bit === "number" && !numeric(pt.type))
      issue([...path, "bit"], `point "${ref.point}" is ${pt.type}: name a flag`);
  };
  if (p.transport === "modbus" && p.modbus) {
    p.modbus.points.forEach((pt, i) => {
      const u = pt.unreliableWhen;
      if (!u) return;
      const path = ["modbus", "points", i, "unreliableWhen"];
      if (u.point === pt.name) issue([...path, "point"], "a point cannot name itself");
      else if (!checkPoint([...path, "point"], u.point)) return;
      const other = points.get(u.point)!;
      u.oneOf.forEach((v, j) => {
        // An enum's values are its register values (keys of values:) or their names.
        if (other.type === "enum") {
          const ok =
            typeof v === "number"
              ? String(v) in (other.values ?? {})
              : Object.values(other.values ?? {}).includes(v);
          if (!ok) issue([...path, "oneOf", j], `enum "${u.point}" has no value ${JSON.stringify(v)}`);
        } else if (other.type === "bitfield" || typeof v !== "number")
          issue(
            [...path, "oneOf", j],
            `point "${u.point}" is ${other.type}: give numbers of an integer point or an enum`,
          );
      });
    });
  }
  if (p.transport === "mqtt" && p.mqtt) {
    p.mqtt.fields.forEach((f, i) => {
      const u = f.unreliableWhen;
      if (!u) return;
      const path = ["mqtt", "fields", i, "unreliableWhen"];
      if (u.point === f.name) issue([...path, "point"], "a field cannot name itself");
      else if (!checkPoint([...path, "point"], u.point)) return;
      const type = points.get(u.point)!.type;
      // The values the field can hold: a number for number and integer fields.
      const want = type === "integer" ? "number" : type;
      u.oneOf.forEach((v, j) => {
        if (typeof v !== want || (type === "integer" && !Number.isSafeInteger(v)))
          issue([...path, "oneOf", j], `field "${u.point}" is ${type}: ${JSON.stringify(v)} is not one`);
      });
    });
  }
  for (const [k, s] of Object.entries(settings)) {
    if (s.default !== undefined) checkLimit(["settings", k, "default"], s.default);
  }
  if (p.testWhile) checkBit(["testWhile"], p.testWhile);
  if (p.activityWhen) {
    const w = p.activityWhen;
    if ((w.bit === undefined) === (w.equals === undefined))
      issue(["activityWhen"], "give exactly one of bit, equals");
    else if (w.bit !== undefined) checkBit(["activityWhen"], w);
    else checkPoint(["activityWhen", "point"], w.point);
  }
  const kinds = p.mqtt?.kinds;
  if (kinds) {
    const at = ["mqtt", "kinds"];
    if (checkPoint([...at, "field"], kinds.field)) {
      const type = points.get(kinds.field)!.type;
      if (type !== "string" && type !== "integer")
        issue([...at, "field"], `field "${kinds.field}" is ${type}: name a string or integer field`);
      else if (type === "integer")
        for (const k of Object.keys(kinds.require))
          if (!/^-?\d+$/.test(k))
            issue([...at, "require", k], `field "${kinds.field}" is an integer: "${k}" is not one`);
    }
    for (const [k, names] of Object.entries(kinds.require))
      names.forEach((n, j) => {
        if (checkPoint([...at, "require", k, j], n) && n === kinds.field)
          issue([...at, "require", k, j], "the kind's own field needs no listing");
      });
  }
  const reply = p.mqtt?.reply;
  if (reply) {
    checkPoint(["mqtt", "reply", "when", "point"], reply.when.point);
    for (const k of ["id", "command", "result"] as const)
      if (checkPoint(["mqtt", "reply", k], reply[k]) && points.get(reply[k])!.type !== "string")
        issue(["mqtt", "reply", k], `field "${reply[k]}" must be a string field`);
  }
  if (p.suppressWhen) {
    const w = p.suppressWhen;
    if ((w.bit === undefined) === (w.equals === undefined))
      issue(["suppressWhen"], "give exactly one of bit, equals");
    else if (w.bit !== undefined) checkBit(["suppressWhen"], w);
    else checkPoint(["suppressWhen", "point"], w.point);
  }
  (p.spikes ?? []).forEach((s, i) => {
    checkPoint(["spikes", i, "point"], s.point, "numeric");
    checkLimit(["spikes", i, "maxJump"], s.maxJump);
    if (s.min !== undefined) checkLimit(["spikes", i, "min"], s.min);
    if (s.max !== undefined) checkLimit(["spikes", i, "max"], s.max);
  });
  // Alarms sharing a code are one alert: they must time and replace it alike (the first one's say).
  const codes = new Map<string, NonNullable<typeof p.alarms>[number]>();
  (p.alarms ?? []).forEach((a, i) => {
    const first = codes.get(a.code);
    if (first === undefined) {
      codes.set(a.code, a);
      return;
    }
    for (const key of ["onDelay", "offDelay", "escalateAs", "unless"] as const)
      if (JSON.stringify(a[key]) !== JSON.stringify(first[key]))
        issue(["alarms", i, key], `alarms sharing the code "${a.code}" must give the same ${key}`);
  });
  // A hold is the alert's: once per code, a limit or an (in)equality of a point of the profile.
  const holdCodes = new Set<string>();
  (p.alarms ?? []).forEach((a, i) => {
    const h = a.holdWhile;
    if (h === undefined) return;
    const path = ["alarms", i, "holdWhile"];
    if (holdCodes.has(a.code))
      issue(path, `give holdWhile on one alarm of the code "${a.code}" (it holds the alert, not one cause)`);
    holdCodes.add(a.code);
    const ks = (["below", "above", "equals", "notEquals"] as const).filter((k) => h[k] !== undefined);
    if (ks.length !== 1) {
      issue(path, `give exactly one of below, above, equals, notEquals (got ${ks.join(", ") || "none"})`);
      return;
    }
    const k = ks[0]!;
    if (k === "below" || k === "above") {
      if (checkPoint([...path, "point"], h.point, "numeric")) checkLimit([...path, k], h[k]);
    } else {
      checkPoint([...path, "point"], h.point);
      if (h.inclusive !== undefined) issue([...path, "inclusive"], "inclusive applies to below/above");
    }
  });
  // A peak and an automatic command are the alert's: once per code, of points and commands it has.
  const unreliableOf = (n: string): boolean =>
    (p.modbus?.points ?? []).some((pt) => pt.name === n && pt.unreliableWhen !== undefined) ||
    (p.mqtt?.fields ?? []).some((f) => f.name === n && f.unreliableWhen !== undefined);
  const peakCodes = new Set<string>();
  const commandCodes = new Set<string>();
  (p.alarms ?? []).forEach((a, i) => {
    const pk = a.peak;
    if (pk !== undefined) {
      const path = ["alarms", i, "peak"];
      if (peakCodes.has(a.code))
        issue(path, `give peak on one alarm of the code "${a.code}" (it is the alert's, not one cause's)`);
      peakCodes.add(a.code);
      checkPoint([...path, "point"], pk.point, "numeric");
      if (pk.suspectFrom !== undefined) {
        checkPoint([...path, "suspectFrom", "point"], pk.suspectFrom.point);
        if (!unreliableOf(pk.point))
          issue(
            [...path, "suspectFrom"],
            `point "${pk.point}" has no unreliableWhen: every value of it is believed`,
          );
      }
    }
    const c = a.command;
    if (c === undefined) return;
    const path = ["alarms", i, "command"];
    if (commandCodes.has(a.code))
      issue(path, `give command on one alarm of the code "${a.code}" (it is the alert's, not one cause's)`);
    commandCodes.add(a.code);
    const known = Object.keys(p.commands ?? {});
    if (!known.includes(c.name))
      issue(
        [...path, "name"],
        `"${c.name}" is not a command of this profile (${known.length ? `known: ${known.join(", ")}` : "it has none: declare it under commands:"})`,
      );
    if (c.unless !== undefined) {
      const ks = (["equals", "notEquals"] as const).filter((k) => c.unless![k] !== undefined);
      if (ks.length !== 1)
        issue([...path, "unless"], `give exactly one of equals, notEquals (got ${ks.join(", ") || "none"})`);
      checkPoint([...path, "unless", "point"], c.unless.point);
    }
    if (c.setting !== undefined) {
      const st = settings[c.setting];
      if (st === undefined)
        issue([...path, "setting"], `unknown setting "${c.setting}" (declare it under settings:)`);
      else if (st.min !== 0 || st.max !== 1 || (st.default !== 0 && st.default !== 1))
        issue(
          [...path, "setting"],
          `setting "${c.setting}" must have min: 0, max: 1 and default: 0 or 1 to switch a command (1: on)`,
        );
    }
    const as = c.as ?? c.setting;
    if (as === undefined) issue(path, "give as: (the alert detail's field) or setting: (which names it)");
    else if (a.peak !== undefined && (as === a.peak.as || as === `${a.peak.as}Suspect`))
      issue(path, `"${as}" is already the peak's field in the alert's detail`);
  });
  // The codes of `all:` alarms: another `all:` cannot name them (no chains, no cycles).
  const allCodes = new Set((p.alarms ?? []).filter((a) => a.when.all !== undefined).map((a) => a.code));
  (p.alarms ?? []).forEach((a, i) => {
    const w = a.when;
    const path = ["alarms", i, "when"];
    if (w.all !== undefined) {
      const others = Object.keys(w).filter((k) => k !== "all" && w[k as keyof typeof w] !== undefined);
      if (others.length > 0)
        issue(path, `all: stands alone (move ${others.join(", ")} into one of its conditions)`);
      w.all.forEach((c, j) => {
        const at = [...path, "all", j];
        if (c.alarm !== undefined) {
          if (
            c.point !== undefined ||
            c.bit !== undefined ||
            c.equals !== undefined ||
            c.notEquals !== undefined
          )
            issue(at, "give alarm alone, or point with one of bit, equals, notEquals");
          else if (c.alarm === a.code) issue([...at, "alarm"], "an alarm cannot name its own code");
          else if (!codes.has(c.alarm))
            issue([...at, "alarm"], `"${c.alarm}" is not another alarm of this profile`);
          else if (allCodes.has(c.alarm))
            issue([...at, "alarm"], `"${c.alarm}" is an all: alarm itself: name the alarms it joins instead`);
          return;
        }
        if (c.point === undefined) {
          issue(at, "give point (with one of bit, equals, notEquals), or alarm: CODE");
          return;
        }
        const ks = (["bit", "equals", "notEquals"] as const).filter((k) => c[k] !== undefined);
        if (ks.length !== 1) {
          issue(
            at,
            `give exactly one of bit, equals, notEquals (got ${ks.join(", ") || "none"}); a limit (below/above) is an alarm of its own, named here by alarm: CODE`,
          );
          return;
        }
        if (ks[0] === "bit") checkBit(at, c as { point: string; bit: string | number });
        else checkPoint([...at, "point"], c.point);
      });
      if (a.causeFrom !== undefined) checkPoint(["alarms", i, "causeFrom"], a.causeFrom);
      checkOnDelay(a, i);
      if (a.unless !== undefined && (!codes.has(a.unless) || a.unless === a.code))
        issue(["alarms", i, "unless"], `"${a.unless}" is not another alarm of this profile`);
      return;
    }
    if (w.point === undefined) {
      issue(path, "give point (with one of bit, below, above, equals, notEquals), or all: [conditions]");
      return;
    }
    const kinds = (["bit", "below", "above", "equals", "notEquals"] as const).filter(
      (k) => w[k] !== undefined,
    );
    if (kinds.length !== 1) {
      issue(
        path,
        `give exactly one of bit, below, above, equals, notEquals (got ${kinds.join(", ") || "none"})`,
      );
      return;
    }
    const kind = kinds[0]!;
    if (kind === "bit") checkBit(path, w as { point: string; bit: string | number });
    else if (kind === "equals" || kind === "notEquals") checkPoint([...path, "point"], w.point);
    else {
      checkPoint([...path, "point"], w.point, "numeric");
      checkLimit([...path, kind], w[kind]);
    }
    if (w.deadband !== undefined && kind !== "below" && kind !== "above")
      issue([...path, "deadband"], "deadband applies to below/above");
    if (w.clearAt !== undefined) {
      if (kind !== "below" && kind !== "above") issue([...path, "clearAt"], "clearAt applies to below/above");
      else if (w.deadband !== undefined) issue([...path, "clearAt"], "give deadband or clearAt, not both");
      else checkLimit([...path, "clearAt"], w.clearAt);
    }
    if (w.inclusive !== undefined && kind !== "below" && kind !== "above")
      issue([...path, "inclusive"], "inclusive applies to below/above");
    if (a.causeFrom !== undefined) checkPoint(["alarms", i, "causeFrom"], a.causeFrom);
    checkOnDelay(a, i);
    if (a.unless !== undefined && (!codes.has(a.unless) || a.unless === a.code))
      issue(["alarms", i, "unless"], `"${a.unless}" is not another alarm of this profile`);
  });
  function checkOnDelay(a: NonNullable<typeof p.alarms>[number], i: number): void {
    if (typeof a.onDelay === "object") {
      // Seconds, said so: a setting of another unit (or none) would be read as a duration by guess.
      const st = settings[a.onDelay.setting];
      if (st === undefined)
        issue(
          ["alarms", i, "onDelay", "setting"],
          `unknown setting "${a.onDelay.setting}" (declare it under settings:)`,
        );
      else if (st.unit !== "s" || typeof st.default !== "number" || st.default < 0)
        issue(
          ["alarms", i, "onDelay", "setting"],
          `setting "${a.onDelay.setting}" must have unit: s and a number default (seconds) to be an onDelay`,
        );
    }
  }
  for (const [cmd, spec] of Object.entries(p.commands ?? {})) {
    if (p.transport === "modbus") {
      const r = modbusCommand.safeParse(spec);
      if (!r.success)
        issue(
          ["commands", cmd],
          'expected {coil: N, value: true|false} or {register: N, value: N | "request", min, max}, each with actuates: true|false',
        );
    } else if (typeof spec !== "object" || spec === null || Array.isArray(spec))
      issue(["commands", cmd], "an MQTT command is the JSON object sent on the downlink topic");
    else if ("actuates" in spec && typeof spec.actuates !== "boolean")
      issue(
        ["commands", cmd, "actuates"],
        "actuates is the gateway's (true: the console asks to confirm it; not sent): true or false",
      );
    else if (!p.mqtt?.downlink) issue(["commands", cmd], "commands need mqtt.downlink");
  }
}

/**
 * What operators read of a declared alert code: the first `title` and `action` its alarms give;
 * without a title, a single alarm's `cause`, else the code (alarms sharing a code are one alert,
 * its `causes` say which held; one of their causes would misname it).
 */
export function declaredAlarmText(
  alarms: readonly Pick<DeclaredProfileDoc["alarms"][number], "code" | "title" | "action" | "cause">[],
  code: string,
): { title: string; action: string | undefined } {
  const own = alarms.filter((a) => a.code === code);
  const title = own.find((a) => a.title !== undefined)?.title;
  const cause = own.length === 1 ? own[0]!.cause : undefined;
  return { title: title ?? cause ?? code, action: own.find((a) => a.action !== undefined)?.action };
}
