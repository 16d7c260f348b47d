/**
 * Changes to aedes' and mqtt-packet's behaviour, made from outside (embedded.ts applies them): a
 * delivery order aedes gets wrong, the memory its parser keeps per connection, and forwarding
 * the gateway has no use for.
 */
import type { Aedes, Client, PublishPacket } from "aedes";
import { BufferList } from "bl";

/**
 * aedes drops a message to a client when its broker counter is not above the
 * last one that client received (per-client `dedupe`, meant for overlapping
 * subscriptions). Counters are taken when a packet is created, but QoS 1 and
 * retained publishes reach the emitter several promise hops later than QoS 0
 * ones, so a telemetry reading published after an alert overtakes it and the
 * alert is silently dropped (moscajs/aedes #994, #955, open). Re-stamping the
 * counter at emission makes counters rise in delivery order; an overlapping
 * subscription still sees the same packet twice and is still deduplicated.
 * Retained replays on subscribe carry no brokerId and skip dedupe, unaffected.
 */
export function restampOnEmit(aedes: Aedes): void {
  const internals = aedes as unknown as {
    counter: number;
    mq: { emit(packet: { brokerCounter: number }, cb?: (err?: Error) => void): void };
  };
  const mq = internals.mq;
  const emit = mq.emit.bind(mq);
  mq.emit = (packet, cb) => {
    packet.brokerCounter = ++internals.counter;
    emit(packet, cb);
  };
}

/**
 * mqtt-packet's parser keeps its unread bytes in a `bl` BufferListStream, a
 * full Duplex stream (two stream states, an emitter) that it only ever uses
 * as a list: append, consume, read, slice. The plain BufferList of the same
 * package has exactly these methods. Its state-name table is shared too.
 * About 0.9 KB per connection (bench/connections.ts).
 */
const PARSER_STATES: readonly string[] = Object.freeze([
  "_parseHeader",
  "_parseLength",
  "_parsePayload",
  "_newPacket",
]);

type ParserSettings = Readonly<{ protocolVersion?: number; bridgeMode?: boolean }>;

/** One frozen settings object per (protocolVersion, bridgeMode) pair, shared by every parser. */
const parserSettings = new Map<string, ParserSettings>();

/**
 * mqtt-packet's parser keeps the whole CONNECT packet as its settings for the
 * life of the connection (the password Buffer, and with it the socket read it
 * was sliced from), yet reads only `protocolVersion` and `bridgeMode` from it
 * afterwards (and never writes to it). Keep just those, in an object shared by
 * every connection with the same pair (at most 3 x 3 of them).
 */
export function forgetConnectPacket(client: Client): void {
  const parser = (client as unknown as { _parser?: { settings: ParserSettings } })._parser;
  if (parser === undefined) return;
  const { protocolVersion, bridgeMode } = parser.settings;
  const key = `${protocolVersion}/${bridgeMode}`;
  let shared = parserSettings.get(key);
  if (shared === undefined) {
    shared = Object.freeze({ protocolVersion, bridgeMode });
    parserSettings.set(key, shared);
  }
  parser.settings = shared;
}

/**
 * bl's BufferList reads a number by slicing it out first: every readUInt8 builds an offset pair
 * and a Buffer view, and mqtt-packet's parser reads each header, length and string-length byte
 * so (~1 KB per packet, 6 % of what the gateway allocated at 2,000 msg/s: docs/performance.md,
 * scavenges on the P1 path). ParserList reads in place when the bytes lie in one buffer (nearly
 * always); across buffers or out of range it is bl's own read, errors included.
 */
export class ParserList extends BufferList {}
type Reads = { _bufs: Buffer[] } & Pick<Buffer, "readUInt8" | "readUInt16BE" | "readUInt32BE">;
const blReads = BufferList.prototype as unknown as Reads;
const parserReads = ParserList.prototype as unknown as Reads;
/** Where holding() found the bytes in their buffer (a variable, not a returned pair: no allocation). */
let heldAt = 0;
/** The buffer holding all `size` bytes at `offset` (heldAt: where in it), or undefined. */
function holding(list: Reads, offset: number, size: number): Buffer | undefined {
  if (!Number.isInteger(offset) || offset < 0) return undefined;
  let at = offset;
  for (const b of list._bufs) {
    if (at < b.length) {
      heldAt = at;
      return at + size <= b.length ? b : undefined;
    }
    at -= b.length;
  }
  return undefined;
}
parserReads.readUInt8 = function readUInt8(this: Reads, offset = 0): number {
  const b = holding(this, offset, 1);
  return b === undefined ? blReads.readUInt8.call(this, offset) : (b[heldAt] as number);
};
parserReads.readUInt16BE = function readUInt16BE(this: Reads, offset = 0): number {
  const b = holding(this, offset, 2);
  return b === undefined ? blReads.readUInt16BE.call(this, offset) : b.readUInt16BE(heldAt);
};
parserReads.readUInt32BE = function readUInt32BE(this: Reads, offset = 0): number {
  const b = holding(this, offset, 4);
  return b === undefined ? blReads.readUInt32BE.call(this, offset) : b.readUInt32BE(heldAt);
};

export function slimParser(client: Client): void {
  const parser = (
    client as unknown as { _parser?: { _list: { length: number }; _states: readonly string[] } }
  )._parser;
  if (parser === undefined || parser._list.length > 0) return;
  parser._list = new ParserList();
  parser._states = PARSER_STATES;
}

/**
 * A device's uplink is consumed by the gateway in authorizePublish (ingest)
 * and nobody may subscribe to device topics (AccessPolicy), so aedes'
 * forwarding of it (QoS 1 offline-queue lookups, topic matching, retained
 * storage) is pure cost: about a third of the broker's work per message.
 * The PUBACK is still sent by aedes after authorizePublish calls back. An operator's request
 * its role does not allow (access.ts `forbidden`) goes nowhere either.
 */
export function skipUplinkForwarding(
  aedes: Aedes,
  isDevice: (client: Client) => boolean,
  /** A publish of another client the gateway refused yet acknowledged (an operator's `forbidden` request). */
  refused: (packet: PublishPacket) => boolean = () => false,
): void {
  const a = aedes as unknown as {
    publish(
      packet: PublishPacket,
      client: Client | null | ((err?: Error) => void),
      done?: (err?: Error) => void,
    ): void;
  };
  const publish = a.publish.bind(aedes);
  a.publish = (packet, client, done) => {
    if (client && typeof client !== "function" && (isDevice(client) || refused(packet))) {
      done?.();
      return;
    }
    publish(packet, client, done);
  };
}
