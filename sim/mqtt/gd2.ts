/**
 * GD-2 household gas detector with a motorised shut-off valve, as it appears
 * on MQTT (datasheets/gd2-gas-detector.md): client id `gd2-<id>`, username
 * `<id>`, uplink `devices/gd2/<id>/up` (QoS 1 for `alarm`, `valve`, `reply`;
 * QoS 0 for `hb`), downlink `devices/gd2/<id>/down` QoS 1. JSON only.
 *
 * Field order follows the datasheet: `alarm` as its example (`t, seq, ts,
 * lel, level, valve`), the others as its tables list their extra fields.
 * `lel` is written with one decimal. Behaviour worth simulating (datasheet):
 * cooking, a real leak with the detector closing the valve itself, a power
 * cut (a minute of silence, then `ts` 0 and `mains` false), a jammed valve.
 */
import type { MqttClient } from "mqtt";
import type { ClockTimer } from "../../core/index.js";
import { decodeDownlink } from "./codec.js";
import { DeviceLink, type DeviceLinkOptions, type SendResult } from "./link.js";

export type GasLevel = "none" | "low" | "high";
export type ValveState = "open" | "closed" | "moving" | "fault";
export type ValveCause = "local" | "remote" | "manual";
export type ReplyResult = "ok" | "busy" | "fault" | "unknown";

/** The detector's own tables (never the gateway's profile). */
export const GD2_HEARTBEAT_MS = 60_000;
export const GD2_MAX_PAYLOAD_BYTES = 384;
/** Factory low set-point and the fixed high level, %LEL. */
export const GD2_LOW_SET_POINT = 10;
export const GD2_HIGH_LEVEL = 25;
/** `valve_open` is only honoured under this, %LEL. */
export const GD2_OPEN_BELOW = 5;
/** "a `valve` message when it has moved (at most 15 s)" */
export const GD2_MAX_VALVE_TRAVEL_MS = 15_000;
/** Fault codes of `fault`. */
export const GD2_FAULT = {
  none: 0,
  sensorEndOfLife: 1,
  sensorFault: 2,
  valveMotor: 3,
  valveNotFitted: 4,
} as const;
/** How long the power cut of the datasheet keeps the detector silent. */
export const GD2_POWER_CUT_MS = 60_000;
const STEP_MS = 1000;

export interface Gd2Options extends DeviceLinkOptions {
  /** The detector's low alarm set-point, %LEL (factory 10). */
  lowSetPoint?: number;
  /** How long the valve takes to move, ms (at most 15 s). Default 8000. */
  valveTravelMs?: number;
  /** Valve position at power-up. Default open (gas flowing). */
  valve?: "open" | "closed";
  /** The detector closes its valve on its own alarm (datasheet behaviour). Default true. */
  autoClose?: boolean;
}

export class Gd2 extends DeviceLink {
  protected readonly model = "gd2" as const;
  protected readonly defaultHeartbeatMs = GD2_HEARTBEAT_MS;
  protected override readonly decimals = { lel: 1 };
  readonly downlinkTopic: string;
  private lelValue = 0;
  private levelValue: GasLevel = "none";
  private valveValue: ValveState;
  private mainsOn = true;
  private faultCode = 0;
  private readonly lowSetPoint: number;
  private readonly valveTravelMs: number;
  private readonly autoClose: boolean;
  private jammed = false;
  private timeSynced = true;
  private poweredDown = false;
  private valveTimer: ClockTimer | undefined;
  private valveTarget: "open" | "closed" = "closed";
  private powerTimer: ClockTimer | undefined;
  private scenarioTimer: ClockTimer | undefined;
  /** Commands received (bounded to the last 32), for tests. */
  readonly commandsReceived: Array<{ cmd: string; id: string }> = [];

  constructor(opts: Gd2Options) {
    if (opts.encoding === "cbor") throw new RangeError("the GD-2 speaks JSON only (datasheet)");
    super("gd2", { ...opts, encoding: "json", drainPerUplink: 0 });
    this.downlinkTopic = `devices/gd2/${opts.deviceId}/down`;
    this.lowSetPoint = opts.lowSetPoint ?? GD2_LOW_SET_POINT;
    this.valveTravelMs = opts.valveTravelMs ?? 8000;
    if (this.valveTravelMs < 0 || this.valveTravelMs > GD2_MAX_VALVE_TRAVEL_MS)
      throw new RangeError(`valveTravelMs must be 0-${GD2_MAX_VALVE_TRAVEL_MS} (datasheet: at most 15 s)`);
    this.autoClose = opts.autoClose ?? true;
    this.valveValue = opts.valve ?? "open";
  }

  get lel(): number {
    return this.lelValue;
  }
  get level(): GasLevel {
    return this.levelValue;
  }
  get valve(): ValveState {
    return this.valveValue;
  }
  get mains(): boolean {
    return this.mainsOn;
  }
  get fault(): number {
    return this.faultCode;
  }

  /** The device clock: 0 after a power cut until it reaches its time server (no battery-backed clock). */
  override deviceNow(): number {
    return this.timeSynced ? super.deviceNow() : 0;
  }

  // ---- uplinks --------------------------------------------------------------------

  heartbeat(): Promise<SendResult> {
    if (this.poweredDown) return Promise.resolve({ seq: -1, status: "dropped", resent: false });
    return this.send("heartbeat", 0, ({ seq, ts }) => ({
      t: "hb",
      seq,
      ts,
      lel: this.lelValue,
      valve: this.valveValue,
      mains: this.mainsOn,
      fault: this.faultCode,
    }));
  }

  private alarm(): Promise<SendResult> {
    return this.send("event", 1, ({ seq, ts }) => ({
      t: "alarm",
      seq,
      ts,
      lel: this.lelValue,
      level: this.levelValue,
      valve: this.valveValue,
    }));
  }

  private valveMessage(cause: ValveCause): Promise<SendResult> {
    return this.send("event", 1, ({ seq, ts }) => ({ t: "valve", seq, ts, valve: this.valveValue, cause }));
  }

  private reply(id: string, cmd: string, result: ReplyResult): Promise<SendResult> {
    return this.send("event", 1, ({ seq, ts }) => ({ t: "reply", seq, ts, id, cmd, result }));
  }

  // ---- what happens in the kitchen -----------------------------------------------

  /**
   * The gas concentration, %LEL (one decimal, 0-100). A change of the
   * detector's level sends an `alarm`; an alarm closes an open valve first
   * when `autoClose` (so the message already shows it `moving`).
   */
  setLel(lel: number): Promise<SendResult> | undefined {
    this.lelValue = Math.round(Math.max(0, Math.min(100, lel)) * 10) / 10;
    const level: GasLevel =
      this.lelValue >= GD2_HIGH_LEVEL ? "high" : this.lelValue >= this.lowSetPoint ? "low" : "none";
    if (level === this.levelValue || this.poweredDown) {
      this.levelValue = level;
      return undefined;
    }
    this.levelValue = level;
    if (level !== "none" && this.autoClose && this.valveValue === "open") this.moveValve("closed", "local");
    return this.alarm();
  }

  /** The resident turns the knob: the valve moves at once and a `valve` message (cause manual) goes out. */
  turnKnob(to: "open" | "closed"): Promise<SendResult> | undefined {
    if (this.valveBroken()) return undefined;
    this.cancelValve();
    this.valveValue = to;
    return this.valveMessage("manual");
  }

  /** The valve jams: commands are answered `ok`, but it never moves and no `valve` message follows. */
  jamValve(on = true): void {
    this.jammed = on;
  }

  /** 0 clears; 1-4 per the datasheet; shown in the next `hb`. */
  setFault(code: number): void {
    this.faultCode = code;
  }

  /** The valve reports `fault` (or, with false, its position again: `position`, default `closed`). */
  setValveFault(on = true, position: "open" | "closed" = "closed"): void {
    this.cancelValve();
    this.valveValue = on ? "fault" : position;
  }

  /**
   * A power cut: the detector goes silent for `outageMs` (default a minute),
   * then comes back on battery: `ts` 0 until `timeServerReached()`, `mains`
   * false until `mainsRestored()`, and a heartbeat at once. Resolves when back.
   */
  powerCut(outageMs = GD2_POWER_CUT_MS): Promise<void> {
    this.poweredDown = true;
    this.mainsOn = false;
    this.timeSynced = false;
    this.cancelValve();
    this.stopScenario();
    return new Promise<void>((resolve) => {
      void this.goOffline().then(() => {
        this.powerTimer = this.clock.setTimeout(() => {
          this.powerTimer = undefined;
          this.poweredDown = false;
          void this.goOnline().then(() => {
            void this.heartbeat();
            resolve();
          });
        }, outageMs);
      });
    });
  }

  timeServerReached(): void {
    this.timeSynced = true;
  }

  mainsRestored(): void {
    this.mainsOn = true;
  }

  /**
   * Cooking: `lel` creeps up to `peak` (3-6 %LEL) over `rampMs` (a minute), stays `holdMs`,
   * and falls back as slowly: no alarm.
   */
  cooking(peak = 4.5, holdMs = 120_000, rampMs = 60_000): void {
    const up = Math.max(1, Math.round(rampMs / STEP_MS));
    const steps: number[] = [];
    for (let i = 1; i <= up; i++) steps.push((peak * i) / up);
    for (let i = 0; i < holdMs / STEP_MS; i++) steps.push(peak);
    for (let i = up - 1; i >= 0; i--) steps.push((peak * i) / up);
    this.runSteps(steps);
  }

  /** A real leak: `lel` rises `perSecond` (2 %LEL/s) to `peak` (40) and stays until `ventilate()`. */
  leak(perSecond = 2, peak = 40): void {
    const steps: number[] = [];
    for (let v = this.lelValue + perSecond; v < peak; v += perSecond) steps.push(v);
    steps.push(peak);
    this.runSteps(steps);
  }

  /** The kitchen is aired: `lel` falls `perSecond` to 0. */
  ventilate(perSecond = 2): void {
    const steps: number[] = [];
    for (let v = this.lelValue - perSecond; v > 0; v -= perSecond) steps.push(v);
    steps.push(0);
    this.runSteps(steps);
  }

  stopScenario(): void {
    if (this.scenarioTimer) this.clock.clearTimeout(this.scenarioTimer);
    this.scenarioTimer = undefined;
  }

  override async stop(): Promise<void> {
    this.stopScenario();
    this.cancelValve();
    if (this.powerTimer) this.clock.clearTimeout(this.powerTimer);
    this.powerTimer = undefined;
    await super.stop();
  }

  // ---- downlink ---------------------------------------------------------------------

  protected override async onConnected(client: MqttClient): Promise<void> {
    await client.subscribeAsync(this.downlinkTopic, { qos: 1 });
  }

  protected override onMessage(topic: string, payload: Buffer): void {
    if (topic !== this.downlinkTopic || this.poweredDown) return;
    const msg = decodeDownlink(payload);
    const cmd = msg?.cmd;
    const id = msg?.id;
    // Without an id there is nothing to answer with; a reply that would not fit is not sent either.
    if (typeof cmd !== "string" || typeof id !== "string" || !this.replyFits(id, cmd)) {
      this.emit("bad-downlink", { topic, payload });
      return;
    }
    this.commandsReceived.push({ cmd, id });
    if (this.commandsReceived.length > 32) this.commandsReceived.shift();
    this.emit("command", { cmd, id });
    switch (cmd) {
      case "valve_close":
        void this.reply(id, cmd, this.command("closed"));
        return;
      case "valve_open":
        void this.reply(id, cmd, this.lelValue >= GD2_OPEN_BELOW ? "busy" : this.command("open"));
        return;
      case "self_test":
        // Buzzer and sensor check: the reply, then a heartbeat with the result in `fault`.
        // After the PUBACK: a QoS 0 heartbeat could otherwise overtake the reply at the broker.
        void this.reply(id, cmd, this.sensorBroken() ? "fault" : "ok").then(() => this.heartbeat());
        return;
      default:
        void this.reply(id, cmd, "unknown");
    }
  }

  /** A remote valve command: its result, and the move (a `valve` message once it has moved). */
  private command(to: "open" | "closed"): ReplyResult {
    if (this.valveBroken()) return "fault";
    // Already on its way there (the detector closing on its own alarm): the same move, no second message.
    if (this.valveTimer) return this.valveTarget === to ? "ok" : "busy";
    if (this.jammed) {
      this.valveValue = "moving"; // the motor runs, the valve does not move: no `valve` message
      return "ok";
    }
    if (this.valveValue !== to) this.moveValve(to, "remote");
    return "ok";
  }

  private moveValve(to: "open" | "closed", cause: ValveCause): void {
    if (this.jammed) {
      this.valveValue = "moving";
      return;
    }
    this.cancelValve();
    this.valveValue = "moving";
    this.valveTarget = to;
    this.valveTimer = this.clock.setTimeout(() => {
      this.valveTimer = undefined;
      this.valveValue = to;
      void this.valveMessage(cause);
    }, this.valveTravelMs);
  }

  private cancelValve(): void {
    if (this.valveTimer) this.clock.clearTimeout(this.valveTimer);
    this.valveTimer = undefined;
  }

  private valveBroken(): boolean {
    return (
      this.valveValue === "fault" ||
      this.faultCode === GD2_FAULT.valveMotor ||
      this.faultCode === GD2_FAULT.valveNotFitted
    );
  }

  private sensorBroken(): boolean {
    return this.faultCode === GD2_FAULT.sensorEndOfLife || this.faultCode === GD2_FAULT.sensorFault;
  }

  /** The datasheet's largest valid payload: a reply carrying this id must fit in 384 bytes. */
  private replyFits(id: string, cmd: string): boolean {
    const worst = JSON.stringify({
      t: "reply",
      seq: 0xffffffff,
      ts: 9_999_999_999_999,
      id,
      cmd,
      result: "unknown",
    });
    return Buffer.byteLength(worst, "utf8") <= GD2_MAX_PAYLOAD_BYTES;
  }

  private runSteps(steps: number[]): void {
    this.stopScenario();
    const next = (i: number) => {
      if (i >= steps.length) {
        this.scenarioTimer = undefined;
        return;
      }
      this.scenarioTimer = this.clock.setTimeout(() => {
        void this.setLel(steps[i]!);
        next(i + 1);
      }, STEP_MS);
    };
    next(0);
  }
}
