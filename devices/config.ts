/**
 * A device's entry in the site file, derived from its profile: the fields of
 * its transport binding (how the gateway reaches it), its `model`, and the
 * fragment the profile declares. Unknown keys are errors, as everywhere in
 * the config, so a field of another model is named instead of ignored.
 */
import { z } from "zod";
import { duration, label, optionalDuration, password, topicId } from "../core/index.js";
import type { AnyProfile, Binding } from "./profile.js";

const common = {
  id: topicId,
  household: topicId.optional().meta({ description: "Household this device belongs to (welfare checks)" }),
  // Name and place of a device, as operators read them in alerts (and its name in telemetry).
  name: label(64)
    .optional()
    .meta({ description: 'Shown to operators in alerts and telemetry (deviceName), e.g. "紧急呼叫器"' }),
  location: label(64)
    .optional()
    .meta({ description: 'Where the device is, shown in alerts, e.g. "卧室床头" or "B1 stairwell"' }),
};

/**
 * An MQTT client of the gateway's broker: its own password (required unless a
 * listener verifies client certificates: checkCredentials, gateway/config/load.ts),
 * a heartbeat that supervises it.
 */
const mqttShape = (interval: string) => ({
  id: common.id,
  password: password.optional(),
  household: common.household,
  name: common.name,
  location: common.location,
  heartbeatInterval: duration(interval),
});

/** A slave on an RS-485 line (buses[]); no password: the gateway is the Modbus master. */
const serialShape = (interval: string) => ({
  ...common,
  bus: topicId.meta({ description: "Id of the serial bus (buses[].id) the device hangs on" }),
  unit: z.number().int().min(1).max(247).meta({ description: "Slave address (DIP switch)" }),
  pollInterval: duration(interval),
});

/** A Modbus TCP endpoint: each one a bus of its own. */
const tcpShape = (interval: string) => ({
  ...common,
  host: z.string().min(1).meta({ description: "Device address (Modbus TCP)" }),
  port: z.number().int().min(1).max(65535).default(502),
  unit: z.number().int().min(0).max(255).default(1),
  pollInterval: duration(interval),
  timeout: optionalDuration().meta({ description: "Reply timeout per request (default 1s)" }),
});

type MqttShape = ReturnType<typeof mqttShape>;
type SerialShape = ReturnType<typeof serialShape>;
type TcpShape = ReturnType<typeof tcpShape>;

export type BindingShape<B extends Binding> = B extends "mqtt"
  ? MqttShape
  : B extends "modbus-serial"
    ? SerialShape
    : TcpShape;

/** The validated config entry of a device bound this way (whatever its model's own fields). */
export type BindingConfig<B extends Binding> = z.output<z.ZodObject<BindingShape<B>>>;

/** The schema of one model's device entries. */
export type DeviceSchema<P extends AnyProfile> = z.ZodObject<
  BindingShape<P["binding"]> & { model: z.ZodLiteral<P["model"]> } & P["config"],
  z.core.$strict
>;

function bindingShape(binding: Binding, interval: string) {
  switch (binding) {
    case "mqtt":
      return mqttShape(interval);
    case "modbus-serial":
      return serialShape(interval);
    case "modbus-tcp":
      return tcpShape(interval);
  }
}

export function deviceSchema<P extends AnyProfile>(profile: P): DeviceSchema<P> {
  const base = bindingShape(profile.binding, profile.interval);
  for (const key of Object.keys(profile.config))
    if (key in base || key === "model")
      throw new Error(
        `profile ${profile.model}: config field "${key}" is its binding's (${profile.binding})`,
      );
  return z.strictObject({
    ...base,
    model: z.literal(profile.model),
    ...profile.config,
  }) as unknown as DeviceSchema<P>;
}

/** One schema per profile, in order: the device union of the config schema. */
export type DeviceSchemas<T extends readonly AnyProfile[]> = { -readonly [K in keyof T]: DeviceSchema<T[K]> };

export function deviceSchemas<const T extends readonly [AnyProfile, ...AnyProfile[]]>(
  profiles: T,
): DeviceSchemas<T> {
  return profiles.map((p) => deviceSchema(p)) as unknown as DeviceSchemas<T>;
}
