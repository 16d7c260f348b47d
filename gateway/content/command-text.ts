/**
 * What an operator reads when a device command failed after it was sent (docs/topics.md "Device
 * commands"): the bus gave no answer, the device answered with a Modbus exception or refused
 * (a GD-2 `reply` of `busy`), or the gateway failed. One line in the site's language naming the
 * device (alert-content.ts `nameDevice`) and the command, beside the machine `error`.
 */
import type { Locale } from "./codes.js";

/** A failed command's `error` (Modbus failure kinds, `internal`, `device-<reply>`) and its detail. */
export interface CommandFailure {
  error: string;
  /** `exception`: the Modbus exception's name (ILLEGAL_DATA_ADDRESS). */
  exception?: string;
}

const ZH_WHY: Record<string, string> = {
  timeout: "设备无应答（已超时），请检查设备电源和总线接线",
  exception: "设备拒绝执行",
  transport: "与设备的连接中断（正在重连），命令未送达",
  crc: "设备应答校验错误，命令可能未执行",
  framing: "设备应答格式错误，命令可能未执行",
  overflow: "总线队列已满，命令未发送",
  duplicate: "同一命令正在执行，本次未发送",
  closed: "总线已关闭，命令未发送",
  internal: "网关内部错误（已记录），设备可能已收到命令",
  "device-busy": "设备忙，拒绝执行",
  "device-fault": "设备故障，拒绝执行",
  "device-unknown": "设备不认识该命令",
  "downlink-expired": "设备一直未连接，命令已过期，未发送",
  "downlink-dropped": "该设备待发命令过多，本命令（最早的一条）已丢弃，未发送",
  "downlink-withdrawn": "设备重新连接前情况已结束，命令未发送",
  "device-removed": "设备已从配置中移除，命令未发送",
  "device-changed": "设备的型号或下行配置已更改，命令未发送，请重新发送",
};

const EN_WHY: Record<string, string> = {
  timeout: "the device did not answer (timed out); check its power and the bus wiring",
  exception: "the device refused it",
  transport: "the link to the device is down (reconnecting); not delivered",
  crc: "the device's answer was corrupt (CRC); it may not have run",
  framing: "the device's answer was malformed; it may not have run",
  overflow: "the bus queue is full; not sent",
  duplicate: "the same command is in progress; not sent",
  closed: "the bus is closed; not sent",
  internal: "the gateway failed (logged); the device may have received it",
  "device-busy": "the device is busy and refused it",
  "device-fault": "the device has a fault and refused it",
  "device-unknown": "the device does not know the command",
  "downlink-expired": "the device did not connect before the command expired; not sent",
  "downlink-dropped":
    "too many commands were waiting for the device; this one, the oldest, was dropped, not sent",
  "downlink-withdrawn": "the condition ended before the device reconnected; not sent",
  "device-removed": "the device was removed from the configuration; not sent",
  "device-changed": "the device's model or downlink changed in the configuration; not sent: send it again",
};

/**
 * Says a failure in `locale`, naming the device and command. `model`: the device's, for one the
 * configuration no longer has (a journaled command's device, gone at a start).
 */
export type CommandFailureText = (
  deviceId: string,
  command: string,
  f: CommandFailure,
  model?: string | null,
) => string;

/**
 * "1号楼 101室 张阿姨的燃气报警器：命令“打开燃气阀”失败，设备忙，拒绝执行". `name`: what operators
 * call the command (alert-content.ts `nameCommand`, as the console says it); without one, the
 * command's own name ("命令 flush_tank 失败").
 */
export function commandFailureText(
  locale: Locale,
  device: string,
  command: string,
  f: CommandFailure,
  name: string | null = null,
): string {
  const exception = f.exception ? ` (Modbus ${f.exception})` : "";
  if (locale === "zh-CN") {
    const why = ZH_WHY[f.error] ?? `设备拒绝执行（${f.error}）`;
    const cmd = name === null ? `命令 ${command} ` : `命令“${name}”`;
    return `${device}：${cmd}失败，${why}${f.exception ? `（Modbus 异常 ${f.exception}）` : ""}`;
  }
  const why = EN_WHY[f.error] ?? `the device refused it (${f.error})`;
  const cmd = name === null ? `command ${command}` : `command "${name}"`;
  return `${device}: ${cmd} failed: ${why}${exception}`;
}

/** Says that a command waits for a device with no connection, naming it and the command. */
export type CommandNotConnectedText = (deviceId: string, command: string) => string;

/**
 * "1号楼 101室 张阿姨的燃气报警器（厨房）：设备当前未连接，命令“关闭燃气阀”尚未送达…": the result
 * is `ok` (queued for the device's next login, southbound/pending-downlinks.ts), and an operator
 * must not read it as done.
 */
export function commandNotConnectedText(
  locale: Locale,
  device: string,
  command: string,
  name: string | null = null,
): string {
  if (locale === "zh-CN") {
    const cmd = name === null ? `命令 ${command} ` : `命令“${name}”`;
    return `${device}：设备当前未连接，${cmd}尚未送达，将在设备重新连接后发送：不要当作已执行`;
  }
  const cmd = name === null ? `command ${command}` : `command "${name}"`;
  return `${device}: not connected now; ${cmd} is not delivered yet and will be sent when it reconnects: do not take it as done`;
}
