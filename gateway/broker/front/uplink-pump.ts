/**
 * The main thread's side of the uplink rings (protocol.ts; the worker writes them in
 * uplink-writer.ts): every turn of the event loop takes the alert ring first (up to ALERT_BATCH),
 * then at most UPLINK_BATCH readings, judges each uplink by the publish rule at the moment it is
 * taken in (a reload may have removed the device), and hands it to the gateway exactly as aedes'
 * path does (`BrokerHandlers.uplink`); its completion goes back to the worker (completion-writer.ts).
 * A close read from the alert ring takes effect once the telemetry ring has been read up to it.
 *
 * An uplink the gateway does not keep (left with its device: lanes full, the device's P1 share used
 * up; or refused by the publish rule, a reload having removed the device) has its connection closed
 * unacknowledged, as on aedes' path, once the QoS 1 uplinks before it
 * are answered (the worker's PubackQueue; a QoS 0 one by the `refuse` message); the uplinks of
 * that connection sent after it and still in the rings are then not taken in either (answered as
 * from a closed connection): the lanes may have drained meanwhile, and one taken in would overtake
 * the refused one, which its device sends again later. One sent before it but read after it (the
 * telemetry ring is read after the alert ring) is taken in: its slot says so (refusedFrom). aedes'
 * path has the same rule (aedes-hooks.ts: its PUBACK queue refusing).
 */
import type { Doorbell, RecordHandler, SpscRing } from "../../../core/threads.js";
import type { Logger, RateLimitedLog } from "../../log.js";
import type { Completion } from "../../pipeline/lanes.js";
import type { Counters } from "../../stats.js";
import type { AccessPolicy, Identity } from "../access.js";
import type { BrokerHandlers } from "../handlers.js";
import { CompletionWriter } from "./completion-writer.js";
import { TAG_CLOSED, TAG_WILL, UPLINK_HEADER_BYTES } from "./protocol.js";

/** Alert-ring records taken per turn of the event loop (all of them, short of a flood). */
const ALERT_BATCH = 1024;
/** Readings taken from the telemetry ring per turn of the event loop. */
const UPLINK_BATCH = 128;

const done0: Completion = () => {};
const CONNECTION_GONE = new Error("connection closed before its uplink was taken in");
const PUBLISH_REFUSED = new Error("publish refused");

/** A connection as the pump sees it. */
export interface PumpConnection {
  readonly identity: Identity | null;
  /** An uplink of it was not kept: it is being closed, and takes nothing more in (order kept). */
  uplinkRefused: boolean;
  /**
   * Once refused: a QoS 1 uplink whose slot is below this came before the refused one (slots
   * follow the connection's stream) and is taken in all the same. The two rings are read apart
   * (alerts first): refusing a reading sent before the refused uplink closed the connection at
   * that reading, and the kept uplinks between lost their PUBACKs (sent again, handled twice).
   */
  refusedFrom: number;
  /** The slot of its last QoS 1 uplink read from the alert ring (-1: none yet). */
  alertSlot: number;
}

/** What the pump needs of the front end (device-front.ts). */
export interface UplinkPumpDeps {
  policy: AccessPolicy;
  handlers: BrokerHandlers;
  counters: Counters;
  rateLog: RateLimitedLog;
  log: Logger;
  /** The front end's connections by id: an uplink is taken in only from a device logged in. */
  connections: ReadonlyMap<number, PumpConnection>;
  /** A connection closed in the worker, its last uplinks read. */
  closed(conn: number, loginPosted: boolean): void;
  /**
   * Has the worker close a connection once its QoS 1 uplinks before now are answered (a QoS 0
   * uplink not kept, or refused by the publish rule), taking nothing more in meanwhile.
   */
  refuse(conn: number): void;
}

export class UplinkPump {
  private readonly policy: AccessPolicy;
  private readonly handlers: BrokerHandlers;
  private readonly counters: Counters;
  private readonly rateLog: RateLimitedLog;
  private readonly log: Logger;
  private readonly connections: ReadonlyMap<number, PumpConnection>;
  private readonly onClosed: (conn: number, loginPosted: boolean) => void;
  private readonly refuse: (conn: number) => void;
  /** The rings of the worker in service (a restarted worker has new ones). */
  private uplink!: SpscRing;
  private uplinkBytes!: Buffer;
  private telemetry!: SpscRing;
  private telemetryBytes!: Buffer;
  /** The completions for the worker in service. */
  private completions!: CompletionWriter;
  /**
   * Which worker the connection ids belong to: a completion due to a dead worker's connection
   * (its uplink still in the gateway's lanes) must not reach the new worker's connection of that id.
   */
  private generation = 0;
  /** Closes read from the alert ring, waiting for the telemetry ring to be read up to them: conn, CONNECT posted (1/0), position. */
  private closing: number[] = [];
  private running = false;
  private done: Promise<void> = Promise.resolve();

  constructor(deps: UplinkPumpDeps) {
    this.policy = deps.policy;
    this.handlers = deps.handlers;
    this.counters = deps.counters;
    this.rateLog = deps.rateLog;
    this.log = deps.log;
    this.connections = deps.connections;
    this.onClosed = deps.closed;
    this.refuse = deps.refuse;
  }

  /** Takes a worker's rings into service. */
  attach(uplink: SpscRing, telemetry: SpscRing, completions: SpscRing): void {
    this.uplink = uplink;
    this.uplinkBytes = Buffer.from(uplink.bytes.buffer, uplink.bytes.byteOffset, uplink.bytes.length);
    this.telemetry = telemetry;
    this.telemetryBytes = Buffer.from(
      telemetry.bytes.buffer,
      telemetry.bytes.byteOffset,
      telemetry.bytes.length,
    );
    this.completions = new CompletionWriter(completions);
  }

  start(): void {
    this.running = true;
    this.done = this.run();
  }

  /**
   * The worker died: what it handed over is taken in (an alert at QoS 0 would be lost otherwise);
   * its PUBACKs cannot follow, and a QoS 1 uplink is sent again by its device (seq dedupe).
   */
  workerDied(): void {
    this.drainRing(this.uplink, Number.POSITIVE_INFINITY, this.onAlertRecord);
    this.generation++;
    this.closing = [];
  }

  /** Stops once the turn under way is done. */
  stop(): Promise<void> {
    this.running = false;
    this.uplink.doorbell?.ring();
    return this.done;
  }

  /** Takes uplinks from the rings, alerts first, a batch per turn of the event loop, until closed. */
  private async run(): Promise<void> {
    const isEmpty = () => this.uplink.isEmpty() && this.telemetry.isEmpty();
    while (this.running) {
      // A batch of readings per turn of the event loop. Draining the whole ring every turn, or
      // whenever it was over half full, conflated telemetry at 30,000/s (the lanes saw bursts as
      // lag) (docs/performance.md "The device listener").
      // In sustained overload the gateway takes only what its lane can start on: the rest waits
      // here, in the ring, and is not decoded just to be conflated (the worker conflates when full).
      const room = this.handlers.readingRoom?.(UPLINK_BATCH) ?? UPLINK_BATCH;
      const n =
        this.drainRing(this.uplink, ALERT_BATCH, this.onAlertRecord) +
        (room > 0 ? this.drainRing(this.telemetry, room, this.onTelemetryRecord) : 0);
      if (this.closing.length > 0) this.closeRead();
      this.completions.flushWaiting();
      // Readings left in the ring for want of room: look again next turn, once the lane has drained.
      // The doorbell of the rings in service (a restarted worker has new ones).
      if (n === 0 && (room > 0 || this.telemetry.isEmpty()))
        await (this.uplink.doorbell as Doorbell).sleep(isEmpty, 100);
      else await new Promise((r) => setImmediate(r));
    }
  }

  private drainRing(ring: SpscRing, max: number, onRecord: RecordHandler): number {
    try {
      return ring.drain(max, onRecord);
    } catch (err) {
      // One record's failure (consumed by the ring) must not stop the device listener.
      this.log.error({ err }, "device listener: an uplink could not be handed over");
      return 1;
    }
  }

  /** Closes whose connections' readings have all been read from the telemetry ring. */
  private closeRead(): void {
    const c = this.closing;
    let i = 0;
    for (; i < c.length && this.telemetry.passed(c[i + 2] as number); i += 3)
      this.onClosed(c[i] as number, c[i + 1] === 1);
    if (i > 0) this.closing = c.slice(i);
  }

  private readonly onAlertRecord = (tag: number, _bytes: Uint8Array, at: number, length: number): void => {
    const b = this.uplinkBytes;
    if (tag === TAG_CLOSED) {
      const connId = b.readUInt32LE(at);
      const loginPosted = b.readInt32LE(at + 4) === 1;
      const position = b.readUInt32LE(at + UPLINK_HEADER_BYTES);
      if (this.closing.length === 0 && this.telemetry.passed(position)) this.onClosed(connId, loginPosted);
      else this.closing.push(connId, loginPosted ? 1 : 0, position);
      return;
    }
    this.onUplink(b, tag, at, length);
  };

  private readonly onTelemetryRecord = (
    tag: number,
    _bytes: Uint8Array,
    at: number,
    length: number,
  ): void => {
    this.onUplink(this.telemetryBytes, tag, at, length);
  };

  private onUplink(b: Buffer, tag: number, at: number, length: number): void {
    const connId = b.readUInt32LE(at);
    const slot = b.readInt32LE(at + 4);
    const ctLength = b[at + 9] as number;
    const c = this.connections.get(connId);
    const will = tag === TAG_WILL;
    // A will is not refused with the uplinks (as on aedes' path): it falls due once, at the close the
    // refusal brought about, and is never sent again (a base station's will may be a press).
    if (
      c === undefined ||
      c.identity?.kind !== "device" ||
      (c.uplinkRefused && !will && (slot < 0 || slot >= c.refusedFrom))
    ) {
      // Closed since (or being closed, an uplink before this one not kept): a QoS 1 uplink was not
      // acknowledged and will be sent again. Answered all the same: the worker counts the
      // completions it is owed.
      if (slot >= 0) this.completions.complete(connId, slot, CONNECTION_GONE);
      return;
    }
    const identity = c.identity;
    // The worker took only PUBLISHes on the device's own uplink topic; its retain flag is the
    // device's own business (never stored, AccessPolicy.authorizePublish).
    const decision = this.policy.ownUplink(identity.device);
    const fromAlertRing = b === this.uplinkBytes;
    if (!decision.ok) {
      const who = identity.device.id;
      const topic = identity.device.uplinkTopic;
      this.counters.reject(identity.device.model, decision.reason);
      this.rateLog.warn(who, decision.reason, { who, topic, will }, "publish refused; device disconnected");
      // Closed as for an uplink not kept (below), once every QoS 1 uplink before it is answered,
      // those kept acknowledged first: closing at once lost their PUBACKs, and the device sent them
      // again (handled twice past its seq window). Nothing after it is taken in meanwhile.
      if (slot >= 0) {
        refused(c, slot);
        this.completions.complete(connId, slot, PUBLISH_REFUSED);
      } else if (!will) {
        refused(c, fromAlertRing ? c.alertSlot + 1 : 0);
        this.refuse(connId);
      }
      return;
    }
    const start = at + UPLINK_HEADER_BYTES;
    const contentType = ctLength === 0 ? undefined : b.toString("latin1", start, start + ctLength);
    // A copy: the ring's bytes are written over once this record is consumed.
    const payload = Buffer.allocUnsafe(at + length - start - ctLength);
    b.copy(payload, 0, start + ctLength, at + length);
    const generation = this.generation;
    if (fromAlertRing && slot >= 0) c.alertSlot = slot;
    // A QoS 0 uplink has no slot: those before it are the alert ring's read so far (in order).
    const refusedFrom0 = fromAlertRing ? c.alertSlot + 1 : 0;
    const done: Completion =
      slot >= 0
        ? (err) => {
            // Its worker died meanwhile: no PUBACK to release (the device sends it again).
            if (generation !== this.generation) return;
            if (err) refused(c, slot);
            this.completions.complete(connId, slot, err);
          }
        : (err) => {
            // QoS 0 not kept (the alert lanes full): as on aedes' path, the connection is closed
            // once its QoS 1 uplinks before this one are answered (their PUBACKs out first).
            if (err && generation === this.generation) {
              refused(c, refusedFrom0);
              this.refuse(connId);
            }
          };
    this.handlers.uplink(identity.device, payload, contentType, will ? done0 : done);
  }
}

/** An uplink of `c` not kept: from it on (`from`, a slot), nothing more is taken in. */
function refused(c: PumpConnection, from: number): void {
  c.refusedFrom = c.uplinkRefused ? Math.min(c.refusedFrom, from) : from;
  c.uplinkRefused = true;
}
