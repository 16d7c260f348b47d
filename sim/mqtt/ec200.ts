/**
 * EC-200 emergency-call pendant, as its base station appears on MQTT
 * (datasheets/ec200-pendant.md): client id `ec200-<id>`, username `<id>`,
 * uplink `devices/ec200/<id>/up` QoS 1 (events and heartbeats alike),
 * downlink `devices/ec200/<id>/down` QoS 1.
 *
 * Field order follows the datasheet example: `t, seq, ts, evt, bat, rssi`
 * (heartbeat: `t, seq, ts, bat, rssi`); `ackd` is appended to the first uplink
 * after an `ack_call`.
 */
import type { MqttClient } from "mqtt";
import type { ClockTimer } from "../../core/index.js";
import type { UplinkFields } from "./codec.js";
import { decodeDownlink } from "./codec.js";
import { DeviceLink, type DeviceLinkOptions, type SendResult } from "./link.js";
import { type Ec200Event, ec200Event, ec200Heartbeat } from "./messages.js";

/** The datasheet's `evt` values. */
export type { Ec200Event };

export const EC200_HEARTBEAT_MS = 300_000;
/** "battery under 15 %" triggers `low_battery`; the emulator drops to this level. */
export const EC200_LOW_BATTERY_LEVEL = 12;
const LOCATE_BEEP_MS = 10_000;

export type Ec200Options = DeviceLinkOptions;

export class Ec200 extends DeviceLink {
  protected readonly model = "ec200" as const;
  protected readonly defaultHeartbeatMs = EC200_HEARTBEAT_MS;
  readonly downlinkTopic: string;
  /** alertId of the last `ack_call` not yet reported in an uplink. */
  private pendingAckd: string | undefined;
  private locateTimer: ClockTimer | undefined;
  /** All ack_call alertIds received, in order (bounded to the last 32). */
  readonly acksReceived: string[] = [];

  constructor(opts: Ec200Options) {
    super("ec200", opts);
    this.downlinkTopic = `devices/ec200/${opts.deviceId}/down`;
  }

  /** True for 10 s after a `locate` command. */
  get beeping(): boolean {
    return this.locateTimer !== undefined;
  }

  press(): Promise<SendResult> {
    return this.event("press");
  }

  /** Button held > 3 s: the resident says it is serious. */
  longPress(): Promise<SendResult> {
    return this.event("long_press");
  }

  fall(): Promise<SendResult> {
    return this.event("fall");
  }

  /** The resident presses cancel (the datasheet: within 30 s of the call). */
  cancel(): Promise<SendResult> {
    return this.event("cancel");
  }

  /** Battery falls under 15 %: the level drops and a `low_battery` event goes out. */
  lowBattery(): Promise<SendResult> {
    this.setBattery(Math.min(this.battery, EC200_LOW_BATTERY_LEVEL));
    return this.event("low_battery");
  }

  heartbeat(): Promise<SendResult> {
    return this.send("heartbeat", 1, (h) => this.withAckd(ec200Heartbeat(h, h.rssi())));
  }

  event(evt: Ec200Event): Promise<SendResult> {
    return this.send("event", 1, (h) => this.withAckd(ec200Event(h, evt, h.rssi())));
  }

  /** Waits for the next `ack_call` (tests, demos). Never rejects; resolves undefined on timeout. */
  nextAck(timeoutMs = 5_000): Promise<string | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.off("ack_call", onAck);
        resolve(undefined);
      }, timeoutMs);
      const onAck = ({ alertId }: { alertId: string }) => {
        clearTimeout(timer);
        resolve(alertId);
      };
      this.once("ack_call", onAck);
    });
  }

  override async stop(): Promise<void> {
    if (this.locateTimer) this.clock.clearTimeout(this.locateTimer);
    this.locateTimer = undefined;
    await super.stop();
  }

  protected override async onConnected(client: MqttClient): Promise<void> {
    // Clean session: the subscription is made again on every connection.
    await client.subscribeAsync(this.downlinkTopic, { qos: 1 });
  }

  protected override onMessage(topic: string, payload: Buffer): void {
    if (topic !== this.downlinkTopic) return;
    const msg = decodeDownlink(payload);
    if (msg?.cmd === "ack_call" && typeof msg.alertId === "string") {
      this.pendingAckd = msg.alertId;
      this.acksReceived.push(msg.alertId);
      if (this.acksReceived.length > 32) this.acksReceived.shift();
      this.emit("ack_call", { alertId: msg.alertId });
    } else if (msg?.cmd === "locate") {
      if (this.locateTimer) this.clock.clearTimeout(this.locateTimer);
      this.locateTimer = this.clock.setTimeout(() => {
        this.locateTimer = undefined;
      }, LOCATE_BEEP_MS);
      this.emit("locate");
    } else {
      this.emit("bad-downlink", { topic, payload });
    }
  }

  /** "The next uplink carries `ackd`": appended after the datasheet fields, then forgotten. */
  private withAckd(fields: UplinkFields): UplinkFields {
    if (this.pendingAckd === undefined) return fields;
    const out = { ...fields, ackd: this.pendingAckd };
    this.pendingAckd = undefined;
    return out;
  }
}
