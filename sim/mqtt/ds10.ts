/**
 * DS-10 door contact, as its radio-to-MQTT bridge appears on MQTT
 * (datasheets/ds10-door.md): client id `ds10-<id>`, username `<id>`, uplink
 * `devices/ds10/<id>/up`, QoS 1 for state changes and QoS 0 for heartbeats.
 * Field order follows the datasheet example: `t, seq, ts, contact, tamper, bat`.
 */
import { DeviceLink, type DeviceLinkOptions, type SendResult } from "./link.js";
import { type Contact, ds10Heartbeat, ds10State } from "./messages.js";

export type { Contact };

export const DS10_HEARTBEAT_MS = 3_600_000;
/** The datasheet alerts at `bat` under 15. */
export const DS10_LOW_BATTERY_LEVEL = 12;

export interface Ds10Options extends DeviceLinkOptions {
  /** Contact state at power-up, default closed. */
  contact?: Contact;
}

export class Ds10 extends DeviceLink {
  protected readonly model = "ds10" as const;
  protected readonly defaultHeartbeatMs = DS10_HEARTBEAT_MS;
  private contactState: Contact;
  private tamperState = false;

  constructor(opts: Ds10Options) {
    super("ds10", opts);
    this.contactState = opts.contact ?? "closed";
  }

  get contact(): Contact {
    return this.contactState;
  }

  get tampered(): boolean {
    return this.tamperState;
  }

  open(): Promise<SendResult> {
    return this.setContact("open");
  }

  close(): Promise<SendResult> {
    return this.setContact("closed");
  }

  /**
   * A bouncing contact as the door opens: open, closed, open, all within 200 ms
   * (the datasheet: "one opening, not three"). `gapMs` between the three state
   * messages, default 40 ms, on the device's clock.
   */
  async bounce(gapMs = 40): Promise<SendResult[]> {
    if (gapMs * 2 >= 200) throw new RangeError("bounce must fit within 200 ms");
    const results: Promise<SendResult>[] = [this.setContact("open")];
    await this.sleep(gapMs);
    results.push(this.setContact("closed"));
    await this.sleep(gapMs);
    results.push(this.setContact("open"));
    return Promise.all(results);
  }

  /** Cover removed (true) or put back (false); a state change, QoS 1. */
  tamper(on: boolean): Promise<SendResult> {
    this.tamperState = on;
    return this.state();
  }

  /** Heartbeat, QoS 0, carrying the current contact state. */
  heartbeat(): Promise<SendResult> {
    return this.send("heartbeat", 0, (h) => ds10Heartbeat(h, this.contactState, this.tamperState));
  }

  /**
   * Battery under 15 %. The DS-10 has no low-battery message of its own: the
   * level shows in `bat` of the next uplink, so a heartbeat is sent at once.
   */
  lowBattery(): Promise<SendResult> {
    this.setBattery(Math.min(this.battery, DS10_LOW_BATTERY_LEVEL));
    return this.heartbeat();
  }

  private setContact(contact: Contact): Promise<SendResult> {
    this.contactState = contact;
    return this.state();
  }

  private state(): Promise<SendResult> {
    return this.send("event", 1, (h) => ds10State(h, this.contactState, this.tamperState));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.clock.setTimeout(resolve, ms);
    });
  }
}
