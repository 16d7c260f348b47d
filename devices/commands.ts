/**
 * An operator's command checked against its model, before anything is sent:
 * the Modbus write it makes, or why it is refused, in the one refusal shape
 * (core/refusal.ts). The gateway publishes the refusal as the command's
 * result (docs/topics.md, "Device commands").
 */
import type { Rejection } from "../core/index.js";
import { reject } from "../core/index.js";
import type { AnyProfile, ModbusDeviceProfile } from "./profile.js";

/** A write on the device's bus: fn 5 (coil, non-zero is ON) or fn 6 (register). */
export interface ModbusWrite {
  fn: 5 | 6;
  address: number;
  value: number;
}

/** The model's command of that name, if it has one (never a property of Object.prototype). */
export function commandOf<P extends AnyProfile>(profile: P, name: string): P["commands"][string] | undefined {
  return Object.hasOwn(profile.commands, name)
    ? (profile.commands[name] as P["commands"][string])
    : undefined;
}

export function unknownCommand(profile: AnyProfile, name: string): Rejection {
  const known = Object.keys(profile.commands);
  return reject("unknown-command", `${profile.label} has no command ${name}; known: ${known.join(", ")}`, {
    path: "command",
    zh: `${profile.label} 没有 ${name} 命令；可用：${known.join("、")}`,
  });
}

/**
 * The write of a Modbus command; one that writes the request's `value` (a
 * set-point) takes an integer within the command's min..max, else nothing is sent.
 */
export function modbusWrite(
  profile: ModbusDeviceProfile,
  name: string,
  value: unknown,
): ModbusWrite | Rejection {
  const cmd = commandOf(profile, name);
  if (!cmd) return unknownCommand(profile, name);
  if (cmd.value !== "request") return { fn: cmd.fn, address: cmd.address, value: cmd.value };
  if (typeof value !== "number" || !Number.isInteger(value) || value < cmd.min || value > cmd.max)
    return reject("bad-value", `an integer ${cmd.min}..${cmd.max} as "value"`, {
      path: "value",
      zh: `"value" 须为 ${cmd.min} 到 ${cmd.max} 的整数`,
    });
  return { fn: 6, address: cmd.address, value };
}
