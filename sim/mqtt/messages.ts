/**
 * The EC-200 and DS-10 uplink messages, field for field in the datasheets'
 * order (JSON keeps insertion order, so this fixes the byte layout), built in
 * one place: the emulators (ec200.ts, ds10.ts) and the bench's open-loop
 * load generator (load.ts) both send these, so a change to a device's
 * messages is made once.
 */
import type { UplinkFields } from "./codec.js";

/** What every uplink carries besides its type: the device's counter, clock, battery and radio. */
export interface Header {
  seq: number;
  ts: number;
  bat: number;
}

export type Ec200Event = "press" | "long_press" | "fall" | "cancel" | "low_battery";
export type Contact = "open" | "closed";

/** EC-200 heartbeat (QoS 1, like every EC-200 uplink): `t, seq, ts, bat, rssi`. */
export function ec200Heartbeat(h: Header, rssi: number): UplinkFields {
  return { t: "hb", seq: h.seq, ts: h.ts, bat: h.bat, rssi };
}

/** EC-200 event (QoS 1): `t, seq, ts, evt, bat, rssi`. */
export function ec200Event(h: Header, evt: Ec200Event, rssi: number): UplinkFields {
  return { t: "evt", seq: h.seq, ts: h.ts, evt, bat: h.bat, rssi };
}

/** DS-10 state change (QoS 1): `t, seq, ts, contact, tamper, bat`. */
export function ds10State(h: Header, contact: Contact, tamper: boolean): UplinkFields {
  return { t: "state", seq: h.seq, ts: h.ts, contact, tamper, bat: h.bat };
}

/** DS-10 heartbeat (QoS 0), carrying the current state: `t, seq, ts, contact, tamper, bat`. */
export function ds10Heartbeat(h: Header, contact: Contact, tamper: boolean): UplinkFields {
  return { t: "hb", seq: h.seq, ts: h.ts, contact, tamper, bat: h.bat };
}
