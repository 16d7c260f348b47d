/**
 * Operators' device commands, the `cmd` row of the action table
 * (operator-actions.ts): `linli/<site>/cmd/<deviceId>/<command>`.
 */
import { type Clock, isRejection, type Rejection, rejectionText } from "../core/index.js";
import type { AnyProfile } from "../devices/index.js";
import type { Logger } from "./log.js";
import type { Publisher } from "./northbound/publisher.js";
import { type CommandRequest, noDevice } from "./operator-actions.js";
import type { Registry } from "./registry.js";
import type { CommandOutcome, ModbusSouthbound } from "./southbound/modbus.js";
import { type MqttCommandOutcome, sendMqttCommand } from "./southbound/mqtt-commands.js";
import type { Counters } from "./stats.js";

type Locale = "zh-CN" | "en";

/**
 * The fields a command's result publishes for an outcome (docs/topics.md): a
 * refusal (the one shape, core/refusal.ts) becomes `error`, with the model's
 * commands (`known`) or what the command takes (`expected`), and `message`
 * in the site's language; what the bus or the downlink made of it is as it is.
 */
export function commandResultFields(
  outcome: CommandOutcome | MqttCommandOutcome | Rejection,
  profile: AnyProfile | undefined,
  locale: Locale,
): object {
  if (!isRejection(outcome)) return outcome;
  return {
    ok: false,
    error: outcome.reason,
    ...(outcome.reason === "unknown-command" && profile ? { known: Object.keys(profile.commands) } : {}),
    ...(outcome.reason === "bad-value" ? { expected: outcome.detail } : {}),
    message: rejectionText(outcome, locale),
  };
}

export class DeviceCommands {
  constructor(
    private readonly registry: Registry,
    private readonly modbus: ModbusSouthbound,
    private readonly publisher: Publisher,
    private readonly counters: Counters,
    private readonly log: Logger,
    private readonly clock: Clock,
    /** The site's language for refusals (`site.locale`), read per command: a reload may change it. */
    private readonly locale: () => Locale = () => "zh-CN",
  ) {}

  /** Runs the command; always answers the operator, even if something below fails unexpectedly. */
  handle(r: CommandRequest): void {
    this.run(r).catch((err: unknown) => {
      this.log.error(
        { err, operator: r.operator, deviceId: r.deviceId, command: r.command },
        "device command failed",
      );
      this.publisher.commandResult(r.deviceId, r.command, {
        deviceId: r.deviceId,
        command: r.command,
        account: r.operator,
        ok: false,
        error: "internal",
        at: this.clock.now(),
      });
    });
  }

  /**
   * `linli/<site>/cmd/<deviceId>/<command>`: Modbus writes go ahead of routine
   * polls on the device's bus; MQTT devices get a downlink message. The outcome
   * is published on `.../<command>/result`, echoing the request's `id` and `by`, with the
   * operator account that sent it (`by` is free text).
   */
  private async run(r: CommandRequest): Promise<void> {
    const { operator, deviceId, command } = r;
    const echo = { id: r.id, by: r.by, account: operator };
    const device = this.registry.devices.get(deviceId);
    let outcome: CommandOutcome | MqttCommandOutcome | Rejection;
    if (!device) outcome = noDevice(deviceId);
    else if (device.profile.transport === "modbus")
      outcome = await this.modbus.command(device, command, r.value);
    else outcome = sendMqttCommand(this.publisher, device, command, echo.id, this.clock.now());
    if (isRejection(outcome)) this.counters.reject("operator", `cmd-${outcome.reason}`);
    else if (!outcome.ok) this.counters.reject("operator", `cmd-${outcome.error}`);
    this.log.info({ operator, deviceId, command, outcome }, "operator command");
    this.publisher.commandResult(deviceId, command, {
      deviceId,
      command,
      ...echo,
      ...commandResultFields(outcome, device?.profile, this.locale()),
      // The id the device will answer with (one the gateway made up when the request had none).
      ...("id" in outcome && echo.id === null ? { id: outcome.id } : {}),
      at: this.clock.now(),
    });
  }
}
