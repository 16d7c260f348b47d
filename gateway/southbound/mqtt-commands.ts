/**
 * Commands to MQTT devices: the profile's downlink message, sent QoS 1 on
 * the device's downlink topic. A device that answers (GD-2 `reply`) echoes
 * the request's `id`; when the operator gave none, or when the gateway sends
 * a command of its own (an automatic shut-off), the gateway makes one up so
 * the answer can still be matched.
 */
import type { CommandReply, MqttDeviceProfile } from "../../devices/index.js";
import type { Publisher } from "../northbound/publisher.js";
import type { DeviceEntry } from "../registry.js";

export type MqttCommandOutcome =
  | { ok: true; sent: true; id: string }
  | { ok: false; error: "unknown-command"; known: string[] }
  | { ok: false; error: "no-downlink" };

/** Longest operator id passed to a device: a reply carrying it must fit the device's payload limit. */
const MAX_ID = 64;
let counter = 0;

/** An id for a request that came without a usable one: unique within this process and short. */
export function commandId(at: number): string {
  counter = (counter + 1) % 0x1000000;
  return `gw-${at.toString(36)}-${counter.toString(36)}`;
}

export function sendMqttCommand(
  publisher: Publisher,
  device: DeviceEntry,
  name: string,
  requestId: string | number | null,
  at: number,
): MqttCommandOutcome {
  const profile = device.profile as MqttDeviceProfile;
  const command = Object.hasOwn(profile.commands, name) ? profile.commands[name] : undefined;
  if (!command) return { ok: false, error: "unknown-command", known: Object.keys(profile.commands) };
  const id =
    typeof requestId === "string" && requestId.length > 0 && requestId.length <= MAX_ID
      ? requestId
      : requestId !== null && typeof requestId === "number"
        ? String(requestId)
        : commandId(at);
  if (!publisher.downlink(device, command.message(id))) return { ok: false, error: "no-downlink" };
  return { ok: true, sent: true, id };
}

/** The device's answer, as a second result on `cmd/<deviceId>/<command>/result` (docs/topics.md). */
export function publishReply(
  publisher: Publisher,
  device: DeviceEntry,
  reply: CommandReply,
  at: number,
): void {
  publisher.commandResult(device.id, reply.command, {
    deviceId: device.id,
    command: reply.command,
    id: reply.id,
    ok: reply.ok,
    reply: reply.result,
    ...(reply.ok ? {} : { error: `device-${reply.result}` }),
    at,
  });
}
