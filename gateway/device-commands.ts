/**
 * Operators' device commands, the `cmd` row of the action table
 * (operator-actions.ts): `linli/<site>/cmd/<deviceId>/<command>`.
 */
import { type Clock, isRejection, type Rejection, reject, rejectionText } from "../core/index.js";
import type { AnyProfile } from "../devices/index.js";
import { COMMANDS_PER_DEVICE, CommandRateLimit } from "./command-rate.js";
import type { CommandFailureText, CommandNotConnectedText } from "./content/command-text.js";
import type { Logger } from "./log.js";
import type { Publisher } from "./northbound/publisher.js";
import { type CommandRequest, noDevice } from "./operator-actions.js";
import type { DeviceEntry, Registry } from "./registry.js";
import type { CommandOutcome, ModbusSouthbound } from "./southbound/modbus.js";
import { type MqttCommandOutcome, sendMqttCommand } from "./southbound/mqtt-commands.js";
import {
  DOWNLINK_TTL_MS,
  type DownlinkDevice,
  type DownlinkHooks,
  type DownlinkOrigin,
} from "./southbound/pending-downlinks.js";
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

/**
 * Who sent a command, as its result says it (docs/topics.md): an operator's request echoes its
 * `id` and `by` with the account; the gateway's own rules say `"by":"gateway"`.
 */
interface Sender {
  /** The counters' model and the log's word for it. */
  kind: "operator" | "automatic";
  id: string | number | null;
  echo: { id?: string | number | null; by: string; account?: string };
}

/** `by` of a command the gateway sent on its own (an automatic action of a device's rules). */
export const AUTOMATIC_BY = "gateway";
const AUTOMATIC: Sender = { kind: "automatic", id: null, echo: { by: AUTOMATIC_BY } };

type Outcome = CommandOutcome | MqttCommandOutcome | Rejection;

/** The refusal of a command over its device's bound (command-rate.ts), saying when the next is taken. */
export function tooManyCommands(deviceId: string, retryMs: number): Rejection {
  const s = Math.max(1, Math.ceil(retryMs / 1000));
  return reject(
    "too-many-commands",
    `device ${deviceId} has had ${COMMANDS_PER_DEVICE} commands in the last minute: not sent; the next is taken in ${s} s`,
    { zh: `设备 ${deviceId} 一分钟内已收到 ${COMMANDS_PER_DEVICE} 条命令，本命令未发送，请 ${s} 秒后再试` },
  );
}

export class DeviceCommands {
  /** Operators' commands per device, bounded (command-rate.ts). */
  private readonly rate = new CommandRateLimit();

  constructor(
    private readonly registry: Registry,
    private readonly modbus: ModbusSouthbound,
    private readonly publisher: Publisher,
    private readonly counters: Counters,
    private readonly log: Logger,
    private readonly clock: Clock,
    /** The site's language for refusals (`site.locale`), read per command: a reload may change it. */
    private readonly locale: () => Locale = () => "zh-CN",
    /** What a failure after sending says, naming the device (content/command-text.ts); null: nothing. */
    private readonly failureText: CommandFailureText | null = null,
    /** What a command queued for a device with no connection says (content/command-text.ts). */
    private readonly notConnectedText: CommandNotConnectedText | null = null,
  ) {}

  /**
   * `linli/<site>/cmd/<deviceId>/<command>`: Modbus writes go ahead of routine
   * polls on the device's bus; MQTT devices get a downlink message. The outcome
   * is published on `.../<command>/result`, echoing the request's `id` and `by`, with the
   * operator account that sent it (`by` is free text).
   */
  handle(r: CommandRequest): void {
    const sender: Sender = { kind: "operator", id: r.id, echo: { id: r.id, by: r.by, account: r.operator } };
    const device = this.registry.devices.get(r.deviceId);
    // Over the device's bound: refused before anything is sent (an unknown device has none).
    const wait = device ? this.rate.take(device, this.clock.monotonic()) : 0;
    if (wait > 0) this.answer(sender, r.deviceId, device, r.command, tooManyCommands(r.deviceId, wait));
    else this.run(sender, r.deviceId, device, r.command, r.value);
  }

  /**
   * A command refused before anything is sent (the operator's role does not allow commands:
   * `forbidden`): answered, counted and logged like every other refusal of a command.
   */
  refuse(r: CommandRequest, refusal: Rejection): void {
    const sender: Sender = { kind: "operator", id: r.id, echo: { id: r.id, by: r.by, account: r.operator } };
    this.answer(sender, r.deviceId, this.registry.devices.get(r.deviceId), r.command, refusal);
  }

  /**
   * A command the rules send themselves (GD-2 automatic shut-off), answered like an operator's.
   * False when it was refused at once (an MQTT device's downlink); a Modbus write's outcome
   * comes later, in its result.
   */
  automatic(device: DeviceEntry, command: string, still?: () => boolean): boolean {
    return this.run(AUTOMATIC, device.id, device, command, undefined, still);
  }

  /**
   * A downlink the journal kept across a restart (pending-downlinks.ts `restore`): its sender is
   * told what becomes of it as before the restart; an automatic one stays due while `still` holds.
   * `device` may be one the site no longer has: what the journal kept of it.
   */
  revive(
    device: DownlinkDevice,
    origin: Extract<DownlinkOrigin, { kind: "operator" | "automatic" }>,
    still?: () => boolean,
  ): DownlinkHooks {
    const sender: Sender =
      origin.kind === "automatic"
        ? AUTOMATIC
        : {
            kind: "operator",
            id: origin.id,
            echo: {
              id: origin.id,
              by: origin.by,
              ...(origin.account === undefined ? {} : { account: origin.account }),
            },
          };
    return this.later(
      sender,
      device,
      origin.command,
      origin.id,
      origin.kind === "automatic" ? still : undefined,
    );
  }

  /**
   * Runs the command; answers it once, with what the send did (or `internal` if the send itself
   * threw). Its value is the send's outcome, whether or not the result could be published: a
   * downlink that went out must not be sent again (GD-2 keeps `shutOffSent` from it).
   */
  private run(
    sender: Sender,
    deviceId: string,
    device: DeviceEntry | undefined,
    command: string,
    value: unknown,
    /** An automatic command's condition: while it holds, a queued downlink stays due. */
    still?: () => boolean,
  ): boolean {
    let outcome: Outcome;
    try {
      if (device?.profile.transport === "modbus") {
        this.modbus.command(device, command, value).then(
          (done) => this.answer(sender, deviceId, device, command, done),
          (err: unknown) => this.failed(sender, deviceId, command, err),
        );
        return true;
      }
      const now = this.clock.now();
      outcome = device
        ? sendMqttCommand(
            this.publisher,
            device,
            command,
            sender.id,
            now,
            (id) => this.later(sender, device, command, id, still),
            still ? null : now + DOWNLINK_TTL_MS,
          )
        : noDevice(deviceId);
    } catch (err) {
      this.failed(sender, deviceId, command, err);
      return false;
    }
    this.answer(sender, deviceId, device, command, outcome);
    return !isRejection(outcome);
  }

  /**
   * Counts (by outcome), logs and publishes the command's one result; never throws. A result that
   * cannot be published is logged, not answered a second time (`internal`) nor counted again.
   */
  private answer(
    sender: Sender,
    deviceId: string,
    device: DeviceEntry | undefined,
    command: string,
    outcome: Outcome,
  ): void {
    try {
      this.publishAnswer(sender, deviceId, device, command, outcome);
    } catch (err) {
      this.log.error(
        { err, ...sender.echo, deviceId, command, outcome },
        `${sender.kind} command result not published`,
      );
    }
  }

  private publishAnswer(
    sender: Sender,
    deviceId: string,
    device: DeviceEntry | undefined,
    command: string,
    outcome: Outcome,
  ): void {
    if (isRejection(outcome)) this.counters.reject(sender.kind, `cmd-${outcome.reason}`);
    else if (!outcome.ok) this.counters.reject(sender.kind, `cmd-${outcome.error}`);
    this.log.info({ ...sender.echo, deviceId, command, outcome }, `${sender.kind} command`);
    this.publisher.commandResult(deviceId, command, {
      deviceId,
      command,
      ...sender.echo,
      ...commandResultFields(outcome, device?.profile, this.locale()),
      // A failure after sending (timeout, Modbus exception): what the refusals have, `message`.
      ...(!isRejection(outcome) && !outcome.ok && this.failureText
        ? { message: this.failureText(deviceId, command, outcome) }
        : {}),
      // Queued for a device with no connection: `ok`, said so that nobody takes it as done.
      ...(!isRejection(outcome) && "deviceConnected" in outcome && this.notConnectedText
        ? { message: this.notConnectedText(deviceId, command) }
        : {}),
      // The id the device will answer with (one the gateway made up when the request had none).
      ...("id" in outcome && sender.id === null ? { id: outcome.id } : {}),
      at: this.clock.now(),
    });
  }

  /**
   * A downlink that waited for its device (pending-downlinks.ts): its sender gets a second result
   * when it is finally sent, or when it is given up (expired, dropped, withdrawn).
   */
  private later(
    sender: Sender,
    device: DownlinkDevice,
    command: string,
    id: string,
    still: (() => boolean) | undefined,
  ): DownlinkHooks {
    const result = (fields: object) => {
      try {
        this.publisher.commandResult(device.id, command, {
          deviceId: device.id,
          command,
          ...sender.echo,
          id,
          ...fields,
          at: this.clock.now(),
        });
      } catch (err) {
        this.log.error({ err, ...sender.echo, deviceId: device.id, command }, "command result not published");
      }
    };
    return {
      ...(still ? { still } : {}),
      origin: {
        kind: sender.kind,
        command,
        id,
        by: sender.echo.by,
        ...(sender.echo.account === undefined ? {} : { account: sender.echo.account }),
      },
      delivered: (waitedMs, resent) => {
        this.log.info(
          { ...sender.echo, deviceId: device.id, command, id, waitedMs, resent },
          `${sender.kind} command sent late`,
        );
        // `resent`: written before on a connection that closed before the device acknowledged it.
        result({ ok: true, sent: true, waitedMs, ...(resent ? { resent: true } : {}) });
      },
      lost: (error) => {
        this.counters.reject(sender.kind, `cmd-${error}`);
        this.log.warn(
          { ...sender.echo, deviceId: device.id, command, id, error },
          `${sender.kind} command not sent`,
        );
        result({
          ok: false,
          sent: false,
          error,
          ...(this.failureText
            ? { message: this.failureText(device.id, command, { error }, device.model) }
            : {}),
        });
      },
    };
  }

  /** The send threw (the bus, the downlink): counted, logged and answered `internal`; never thrown on. */
  private failed(sender: Sender, deviceId: string, command: string, err: unknown): void {
    this.counters.reject(sender.kind, "cmd-internal");
    this.log.error({ err, ...sender.echo, deviceId, command }, `${sender.kind} command failed`);
    try {
      this.publisher.commandResult(deviceId, command, {
        deviceId,
        command,
        ...sender.echo,
        ok: false,
        error: "internal",
        ...(this.failureText ? { message: this.failureText(deviceId, command, { error: "internal" }) } : {}),
        at: this.clock.now(),
      });
    } catch (again) {
      this.log.error({ err: again, deviceId, command }, "command failure not published");
    }
  }
}
