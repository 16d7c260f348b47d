/**
 * Packet sizes judged from the MQTT fixed header, in front of aedes' parser.
 *
 * mqtt-packet buffers a packet until its announced remaining length has
 * arrived and aedes sets no maximum: a client that never logs in could
 * announce a 10 MB CONNECT and the gateway kept every byte it sent (20 such
 * sockets: RSS 148 -> 297 MB, not given back). aedes reads a socket with
 * `conn.read(null)` on "readable" (lib/client.js nextBatch), so the guard
 * wraps that read: it walks the fixed headers of what was read (type byte,
 * remaining length varint, then skips the body by arithmetic, no copy) and
 * destroys the socket as soon as a header announces more than the limit,
 * before the parser sees the chunk. The body is never buffered: the socket's
 * own read buffer is bounded by its high-water mark.
 *
 * Before login the limit is a small CONNECT (maxConnectSize) and the first
 * packet must be a CONNECT; after login it is the role's (setLimit).
 *
 * SUBSCRIBE and UNSUBSCRIBE (rare) are also read past their fixed header: one
 * without a topic filter (§3.8.3-3, §3.10.3-2) or with packet identifier 0
 * (§2.3.1-1) is malformed, and aedes has no hook before it answers them
 * (a SUBACK or UNSUBACK to packet id 0, an UNSUBACK to no filter). The device
 * listener closes them (front/worker.ts); here too. The packet identifier is
 * the body's first two bytes in MQTT 3.1.1 and 5 alike; an MQTT 5 device's
 * SUBSCRIBE without a filter (its property length makes it 3 bytes) passes
 * here and is closed as mqtt-packet refuses its SUBACK (aedes-hooks.ts).
 */
import type { Socket } from "node:net";

/** MQTT 3.1.1 §2.2.3: at most four bytes of remaining length. */
const MAX_LENGTH_BYTES = 4;
const CONNECT = 1;
const SUBSCRIBE = 8;
const UNSUBSCRIBE = 10;
/** What a client may send before its CONNACK: the CONNECT and a few packets pipelined behind it. */
const PRE_LOGIN_PACKETS = 4;

export type FrameRefusal =
  | "packet-too-large"
  | "connect-too-large"
  | "malformed-header"
  | "not-connect"
  | "malformed-packet";

const HEADER = 0;
const LENGTH = 1;
/** A SUBSCRIBE's or UNSUBSCRIBE's packet identifier: its high byte, then its low byte. */
const ID_HIGH = 2;
const ID_LOW = 3;

/** The guard of a socket whose read() is `guardedRead`, and the read it wraps. */
const GUARD = Symbol("linli.frameGuard");
type GuardedSocket = Socket & { [GUARD]: FrameGuard };

/**
 * One read wrapper shared by every guarded socket (the guard hangs off the socket), rather than a
 * bound read and a closure per connection: with 10,000 devices each on its own connection that is
 * ~0.2 KB each (bench/connections.ts).
 */
function guardedRead(this: GuardedSocket, size?: number): Buffer | null {
  const guard = this[GUARD];
  const chunk = guard.read.call(this, size) as Buffer | null;
  if (chunk === null || guard.scan(chunk)) return chunk;
  return null;
}

/** `detail`: what was malformed (a "malformed-packet" refusal only). */
export type FrameRefused = (
  reason: FrameRefusal,
  announced: number,
  limit: number,
  guard: FrameGuard,
  detail?: string,
) => void;

export class FrameGuard {
  private state = HEADER;
  private type = 0;
  private length = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  /** Body bytes still to pass before the next fixed header. */
  private skip = 0;
  private packets = 0;
  private packetId = 0;
  private loggedIn = false;
  private limit: number;
  /** Bytes read before login; at most PRE_LOGIN_PACKETS small packets' worth (a CONNECT and what a client pipelines after it). */
  private preLogin = 0;
  private readonly preLoginMax: number;
  /** @internal The socket's own read(), called by guardedRead. */
  readonly read: Socket["read"];

  /** `onRefuse` may be shared by every guard (it is given the guard). */
  constructor(
    readonly socket: Socket,
    maxConnectSize: number,
    private readonly onRefuse: FrameRefused,
  ) {
    this.limit = maxConnectSize;
    this.preLoginMax = PRE_LOGIN_PACKETS * (maxConnectSize + 5);
    this.read = socket.read;
    (socket as GuardedSocket)[GUARD] = this;
    socket.read = guardedRead as Socket["read"];
  }

  /** Who logged in (a device model or "operator"), for counting; null before login. */
  role: string | null = null;

  /** After login: the role's largest packet. */
  /** The largest remaining length accepted now. */
  get packetLimit(): number {
    return this.limit;
  }

  setLimit(limit: number, role: string): void {
    this.loggedIn = true;
    this.limit = limit;
    this.role = role;
  }

  /** @internal True if every header in `chunk` is within the limit; else refuses and destroys the socket. */
  scan(chunk: Buffer): boolean {
    let i = 0;
    const n = chunk.length;
    if (!this.loggedIn) {
      this.preLogin += n;
      if (this.preLogin > this.preLoginMax) return this.refuse("connect-too-large", this.preLogin);
    }
    while (i < n) {
      if (this.skip > 0) {
        const take = Math.min(this.skip, n - i);
        this.skip -= take;
        i += take;
        continue;
      }
      const b = chunk[i++] as number;
      if (this.state === ID_HIGH) {
        this.state = ID_LOW;
        this.packetId = b << 8;
        continue;
      }
      if (this.state === ID_LOW) {
        if ((this.packetId | b) === 0)
          return this.malformed(`${this.type === SUBSCRIBE ? "" : "UN"}SUBSCRIBE with packet identifier 0`);
        this.skip = this.length - 2;
        this.state = HEADER;
        continue;
      }
      if (this.state === HEADER) {
        this.type = b >> 4;
        this.state = LENGTH;
        this.length = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
        continue;
      }
      this.length += (b & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      this.lengthBytes++;
      if (b & 0x80) {
        if (this.lengthBytes === MAX_LENGTH_BYTES) return this.refuse("malformed-header", this.length);
        // Already over the limit with bytes still to come: no need to wait for them.
        if (this.length > this.limit) return this.refuse(this.tooLarge(), this.length);
        continue;
      }
      if (!this.loggedIn && this.packets === 0 && this.type !== CONNECT)
        return this.refuse("not-connect", this.length);
      if (this.length > this.limit) return this.refuse(this.tooLarge(), this.length);
      this.packets++;
      if (this.type === SUBSCRIBE || this.type === UNSUBSCRIBE) {
        // Two bytes of packet identifier and at least one filter (a 2-byte length at least).
        if (this.length <= 2)
          return this.malformed(`${this.type === SUBSCRIBE ? "" : "UN"}SUBSCRIBE without a topic filter`);
        this.state = ID_HIGH;
        continue;
      }
      this.skip = this.length;
      this.state = HEADER;
    }
    return true;
  }

  private malformed(detail: string): false {
    this.onRefuse("malformed-packet", this.length, this.limit, this, detail);
    this.socket.destroy();
    return false;
  }

  private tooLarge(): FrameRefusal {
    return this.loggedIn ? "packet-too-large" : "connect-too-large";
  }

  private refuse(reason: FrameRefusal, announced: number): false {
    this.onRefuse(reason, announced, this.limit, this);
    this.socket.destroy();
    return false;
  }
}

/** Room for an MQTT 5 PUBLISH's properties (content type, a few user properties). */
const PROPERTY_ALLOWANCE = 128;

/**
 * A device's largest packet: a PUBLISH of its model's largest payload on its
 * own uplink topic (2-byte topic length, topic, 2-byte packet id, properties).
 */
export function deviceMaxPacket(model: string, deviceId: string, maxPayloadBytes: number): number {
  const topic = Buffer.byteLength(`devices/${model}/${deviceId}/up`);
  return 2 + topic + 2 + PROPERTY_ALLOWANCE + maxPayloadBytes;
}
