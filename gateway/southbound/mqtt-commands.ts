/**
 * Commands to MQTT devices: the profile's downlink message, sent QoS 1 on
 * the device's downlink topic. A device that answers (GD-2 `reply`) echoes
 * the request's `id`; when the operator gave none, or when the gateway sends
 * a command of its own (an automatic shut-off), the gateway makes one up so
 * the answer can still be matched.
 */

import { type Rejection, reject } from "../../core/index.js";
import { type CommandReply, commandOf, type MqttDeviceProfile, unknownCommand } from "../../devices/index.js";
import type { CommandFailureText } from "../content/command-text.js";
import type { Publisher } from "../northbound/publisher.js";
import type { DeviceEntry } from "../registry.js";
import type { DownlinkHooks } from "./pending-downlinks.js";

/**
 * The downlink left, or waits for the device's next login (`queued`, pending-downlinks.ts: the
 * device has no connection subscribed to its downlink, `deviceConnected: false`); a command the
 * gateway refuses is a `Rejection`.
 */
export type MqttCommandOutcome =
  | { ok: true; sent: true; id: string }
  | { ok: true; sent: false; queued: true; deviceConnected: false; expiresAt?: number; id: string };

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
  /** What becomes of it if it has to wait (told to the sender later). */
  hooks: (id: string) => DownlinkHooks = () => ({}),
  /** When a queued one expires, if it does: for the first result. */
  expiresAt: number | null = null,
): MqttCommandOutcome | Rejection {
  const profile = device.profile as MqttDeviceProfile;
  const command = commandOf(profile, name);
  if (!command) return unknownCommand(profile, name);
  const id =
    typeof requestId === "string" && requestId.length > 0 && requestId.length <= MAX_ID
      ? requestId
      : requestId !== null && typeof requestId === "number"
        ? String(requestId)
        : commandId(at);
  const sent = publisher.downlink(device, command.message(id), hooks(id));
  if (!sent)
    return reject("no-downlink", `${device.id} has no downlink topic`, {
      zh: `设备 ${device.id} 没有下行主题`,
    });
  if (sent === "queued")
    return {
      ok: true,
      sent: false,
      queued: true,
      deviceConnected: false,
      ...(expiresAt === null ? {} : { expiresAt }),
      id,
    };
  return { ok: true, sent: true, id };
}

/** The device's answer, as a second result on `cmd/<deviceId>/<command>/result` (docs/topics.md). */
export function publishReply(
  publisher: Publisher,
  device: DeviceEntry,
  reply: CommandReply,
  at: number,
  /** A refusal's `message`, in the site's language (content/command-text.ts). */
  failureText: CommandFailureText | null = null,
): void {
  publisher.commandResult(device.id, reply.command, {
    deviceId: device.id,
    command: reply.command,
    id: reply.id,
    ok: reply.ok,
    reply: reply.result,
    ...(reply.ok
      ? {}
      : {
          error: `device-${reply.result}`,
          ...(failureText
            ? { message: failureText(device.id, reply.command, { error: `device-${reply.result}` }) }
            : {}),
        }),
    at,
  });
}
