/**
 * EC-200 base stations as the datasheet describes them (/work/shared/datasheets/ec200-pendant.md):
 * client id `ec200-<id>`, username `<id>`, uplink `devices/ec200/<id>/up` at QoS 1, a
 * unique increasing `seq` per press, and the SAME message re-sent (same `seq`)
 * until it is PUBACKed, across reconnects and gateway restarts.
 *
 * One press in flight per pendant (the next waits for the PUBACK); presses made
 * meanwhile queue at the base station, at most QUEUE_MAX (overflow: the new press
 * is refused and counted in `refused`, never silently dropped).
 */
import mqtt, { type MqttClient } from "mqtt";

const QUEUE_MAX = 64;
const RECONNECT_MS = 150;

export interface Press {
  device: string;
  seq: number;
  payload: string;
  /** Local time of the first transmission (0: not sent yet). */
  firstSentAt: number;
  /** Local time of the latest transmission. */
  lastSentAt: number;
  attempts: number;
  /** Local time its PUBACK arrived, and from which gateway process (gen). */
  ackedAt: number | null;
  ackGen: number | null;
}

class Pendant {
  private client: MqttClient | null = null;
  private connecting = false;
  private inFlight: { press: Press } | null = null;
  readonly queue: Press[] = [];
  private seq: number;

  constructor(
    readonly id: string,
    readonly password: string,
    private readonly fleet: PendantFleet,
    firstSeq: number,
  ) {
    this.seq = firstSeq;
  }

  nextPress(): Press | null {
    if (this.queue.length >= QUEUE_MAX) return null;
    this.seq = (this.seq + 1) >>> 0;
    const p: Press = {
      device: this.id,
      seq: this.seq,
      payload: JSON.stringify({ t: "evt", seq: this.seq, ts: Date.now(), evt: "press", bat: 87, rssi: -71 }),
      firstSentAt: 0,
      lastSentAt: 0,
      attempts: 0,
      ackedAt: null,
      ackGen: null,
    };
    this.queue.push(p);
    this.pump();
    return p;
  }

  connect(): void {
    if (this.client || this.connecting || !this.fleet.open || this.fleet.closing) return;
    this.connecting = true;
    const client = mqtt.connect(`mqtt://127.0.0.1:${this.fleet.port}`, {
      clientId: `ec200-${this.id}`,
      username: this.id,
      password: this.password,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      keepalive: 30,
    });
    client.on("error", () => {});
    client.once("connect", () => {
      this.connecting = false;
      this.client = client;
      this.pump();
    });
    client.once("close", () => {
      this.connecting = false;
      if (this.client === client) this.client = null;
      // Whatever was in flight is unconfirmed: it is re-sent as it is (same seq) on the next connection.
      this.inFlight = null;
      client.end(true);
      if (this.fleet.open && !this.fleet.closing) setTimeout(() => this.connect(), RECONNECT_MS);
    });
  }

  private pump(): void {
    const client = this.client;
    if (!client?.connected || this.inFlight || !this.fleet.open) return;
    const press = this.queue[0];
    if (!press) return;
    const attempt = { press };
    this.inFlight = attempt;
    const now = Date.now();
    if (press.attempts === 0) press.firstSentAt = now;
    press.lastSentAt = now;
    press.attempts++;
    client.publish(`devices/ec200/${this.id}/up`, press.payload, { qos: 1 }, (err) => {
      if (this.inFlight !== attempt) return; // the connection dropped meanwhile: re-sent later
      this.inFlight = null;
      if (err) return;
      press.ackedAt = Date.now();
      press.ackGen = this.fleet.gen;
      this.queue.shift();
      this.fleet.acked++;
      this.pump();
    });
  }

  /** Closes the connection (the gateway is about to go; we reconnect when `open` is set again). */
  drop(): void {
    const c = this.client;
    this.client = null;
    this.inFlight = null;
    c?.end(true);
  }

  /** No connection and none being made. */
  get offline(): boolean {
    return this.client === null && !this.connecting;
  }
}

export interface PendantSpec {
  id: string;
  password: string;
}

export class PendantFleet {
  readonly pendants = new Map<string, Pendant>();
  readonly presses: Press[] = [];
  /** Presses refused because the base station's queue was full. */
  refused = 0;
  acked = 0;
  /** While false, no pendant connects or sends (held across a gateway restart). */
  open = false;
  closing = false;
  /** The gateway process presses are acknowledged by now (for Press.ackGen). */
  gen = 0;

  constructor(
    readonly port: number,
    specs: readonly PendantSpec[],
  ) {
    // Seq starts somewhere arbitrary and per device, as a real pendant's would.
    let s = 1000;
    for (const spec of specs)
      this.pendants.set(spec.id, new Pendant(spec.id, spec.password, this, (s += 7919)));
  }

  /** Lets the pendants connect (again) and send what they hold. */
  resume(gen: number): void {
    this.gen = gen;
    this.open = true;
    for (const p of this.pendants.values()) p.connect();
  }

  /** Stops connecting and sending; queued and in-flight presses are kept for later. */
  hold(): void {
    this.open = false;
  }

  press(deviceId: string): Press | null {
    const p = this.pendants.get(deviceId);
    if (!p) throw new Error(`no pendant ${deviceId}`);
    const press = p.nextPress();
    if (press) this.presses.push(press);
    else this.refused++;
    return press;
  }

  allDisconnected(): boolean {
    for (const p of this.pendants.values()) if (!p.offline) return false;
    return true;
  }

  /** Presses not PUBACKed yet (queued or in flight). */
  get pending(): number {
    let n = 0;
    for (const p of this.pendants.values()) n += p.queue.length;
    return n;
  }

  async close(): Promise<void> {
    this.closing = true;
    this.open = false;
    for (const p of this.pendants.values()) p.drop();
  }
}
