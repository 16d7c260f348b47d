/**
 * MQTT 5 devices on aedes' listeners (the datasheets' "MQTT 3.1.1 or 5"). aedes 1.2 speaks 3.1.1
 * only: it answers a level-5 CONNECT with CONNACK 1 (lib/handlers/connect.js) and writes every
 * packet with mqtt-packet's 3.1.1 encoding (lib/write.js calls writeToStream without options).
 * mqtt-packet itself reads and writes 5: its parser takes the level from the CONNECT, its writer
 * from an options argument. So a level-5 CONNECT is marked here before aedes checks it:
 *
 * - the parser keeps reading MQTT 5 (properties: content type, will properties), aedes is told 4;
 * - the connection's stream carries a V5 link, and mqtt-packet's writeToStream, wrapped once the
 *   first MQTT 5 CONNECT arrives (a gateway without MQTT 5 clients runs aedes' writer untouched),
 *   writes that stream's packets as MQTT 5: CONNACK with reason codes and properties, PUBACK,
 *   SUBACK, UNSUBACK, downlink PUBLISH;
 * - as on the device listener (front/connection.ts), no session is kept for a device: session
 *   expiry is answered 0 and the session is clean (a will is then published at once, its delay
 *   ended by the session's end, §3.1.3.2.2);
 * - topic aliases are not offered (CONNACK announces none): a PUBLISH using one is answered with
 *   DISCONNECT 0x94 (topic alias invalid) and closed; enhanced authentication (an authentication
 *   method) with CONNACK 0x8C;
 * - the CONNACK states the role's packet limit (Maximum Packet Size), and a packet over the
 *   client's own Maximum Packet Size is not sent to it (§3.1.2.11.4);
 * - no more unacknowledged QoS 1/2 PUBLISHes are sent than the client's Receive Maximum
 *   (§3.3.4, MQTT-3.3.4-7): the rest wait, in order, for its PUBACKs (bounded, below);
 * - a DISCONNECT with reason 0x04 ("Disconnect with Will Message", §3.14.2.1) closes the
 *   connection as a loss does, so aedes publishes the will (it takes every DISCONNECT as clean).
 *
 * Devices only: operators' consoles keep 3.1.1 (their deliveries are written as 3.1.1 frames by
 * operator-delivery.ts and sessions.ts); an MQTT 5 operator login is answered with 0x84.
 */
import type { Socket } from "node:net";
import type { Aedes, Client } from "aedes";
import mqttPacket from "mqtt-packet";
import { MAX_WAITING_DOWNLINKS, UNSUPPORTED_PROTOCOL_VERSION, v5ConnackReason } from "./mqtt5-reasons.js";

export { UNSUPPORTED_PROTOCOL_VERSION };

/** An MQTT 5 connection's state, kept on its stream (the writer is handed only the stream). */
export interface V5Link {
  /** The client's Maximum Packet Size (CONNECT property), or Infinity. */
  clientMax: number;
  /** The role's packet limit, stated in the CONNACK (0: not known yet, not stated). */
  serverMax: number;
  /** The client asked for a session expiry: the CONNACK answers 0. */
  expiryAsked: boolean;
  /** A refusal's MQTT 5 reason code that replaces the 3.1.1 return code's (0: none). */
  refusal: number;
  /** Refused and closing: nothing more it sends is read. */
  closing: boolean;
  /** The client's Receive Maximum (CONNECT property, default 65,535, §3.1.2.11.3). */
  receiveMax: number;
  /** Packet ids of QoS 1/2 PUBLISHes sent and not yet acknowledged (PUBACK, PUBCOMP). */
  inflight: Set<number>;
  /** QoS 1/2 PUBLISHes waiting for room under the Receive Maximum, oldest first (bounded). */
  waiting: mqttPacket.IPublishPacket[];
  /** A waiting PUBLISH dropped to keep the bound (counted by the caller's refusal counter). */
  overflow: () => void;
}

const V5 = Symbol("linli.mqtt5");
type Tagged = { [V5]?: V5Link };

/** Only protocolVersion is read by the parser after the CONNECT (aedes-patches.ts forgetConnectPacket). */
const SETTINGS_V5 = Object.freeze({ protocolVersion: 5, bridgeMode: false });
const OPTS_V5 = Object.freeze({ protocolVersion: 5 });

/** MQTT 5 reason codes (§2.4). */
const BAD_AUTHENTICATION_METHOD = 0x8c;
const DISCONNECT_WITH_WILL = 0x04;
/** §3.1.2.11.3: absent, the Receive Maximum is 65,535. */
const DEFAULT_RECEIVE_MAX = 65_535;
const TOPIC_ALIAS_INVALID = 0x94;

type Write = (packet: mqttPacket.Packet, stream: NodeJS.WritableStream, opts?: object) => boolean;

/** aedes' writer, before the wrap (null: not wrapped, no MQTT 5 client came). */
let plainWrite: Write | null = null;

/** The MQTT 5 link of a client, if it logged in with MQTT 5. */
export function v5LinkOf(client: Client): V5Link | undefined {
  return (client as unknown as { conn?: Tagged }).conn?.[V5];
}

/** The largest a PUBLISH of aedes' (no properties) can encode to: fixed header 5, lengths, id. */
function publishBound(p: mqttPacket.IPublishPacket): number {
  const payload = typeof p.payload === "string" ? Buffer.byteLength(p.payload) : p.payload.length;
  return 5 + 2 + Buffer.byteLength(p.topic) + 2 + 1 + payload;
}

/** One packet aedes writes to an MQTT 5 connection, in MQTT 5 form. */
function writeV5(
  write: Write,
  packet: mqttPacket.Packet,
  stream: NodeJS.WritableStream,
  link: V5Link,
): boolean {
  switch (packet.cmd) {
    case "connack": {
      const rc = (packet as { returnCode?: number }).returnCode ?? 0;
      const properties: mqttPacket.IConnackPacket["properties"] = {};
      if (rc === 0 && link.serverMax > 0) properties.maximumPacketSize = link.serverMax;
      if (rc === 0 && link.expiryAsked) properties.sessionExpiryInterval = 0;
      const connack: mqttPacket.IConnackPacket = {
        cmd: "connack",
        sessionPresent: rc === 0 && packet.sessionPresent === true,
        reasonCode: link.refusal !== 0 && rc !== 0 ? link.refusal : v5ConnackReason(rc),
        properties,
      };
      return write(connack, stream, OPTS_V5);
    }
    case "puback":
    case "pubrec":
    case "pubrel":
    case "pubcomp":
      // aedes' acknowledgements carry no reason code: success (§3.4.2.1).
      return write({ ...packet, reasonCode: packet.reasonCode ?? 0 }, stream, OPTS_V5);
    case "unsuback":
      // aedes' UNSUBACK has no per-filter codes, which MQTT 5 requires: success (as 3.1.1 means).
      return write(
        { ...packet, granted: (packet as { granted?: number[] }).granted ?? [0] } as mqttPacket.Packet,
        stream,
        OPTS_V5,
      );
    case "publish":
      // §3.1.2.11.4: not sent, as if sent (a downlink the device cannot take; none is that large).
      if (publishBound(packet) > link.clientMax) return true;
      if ((packet.qos ?? 0) > 0 && packet.messageId !== undefined) {
        // MQTT-3.3.4-7: at the Receive Maximum, it waits for a PUBACK (as if written: aedes
        // keeps no count of its own).
        if (link.inflight.size >= link.receiveMax) {
          if (link.waiting.length >= MAX_WAITING_DOWNLINKS) {
            link.waiting.shift();
            link.overflow();
          }
          link.waiting.push(packet);
          return true;
        }
        link.inflight.add(packet.messageId);
      }
      return write(packet, stream, OPTS_V5);
    default:
      return write(packet, stream, OPTS_V5);
  }
}

/** Wraps mqtt-packet's writeToStream (shared with aedes) once: MQTT 5 streams get MQTT 5 packets. */
function wrapWriter(): Write {
  if (plainWrite !== null) return plainWrite;
  const w = mqttPacket.writeToStream as unknown as Write & { cacheNumbers: boolean };
  const write: Write = w;
  plainWrite = write;
  const wrapped = (packet: mqttPacket.Packet, stream: NodeJS.WritableStream, opts?: object): boolean => {
    const link = (stream as unknown as Tagged)[V5];
    return link === undefined ? write(packet, stream, opts) : writeV5(write, packet, stream, link);
  };
  Object.defineProperty(wrapped, "cacheNumbers", {
    get: () => w.cacheNumbers,
    set: (v: boolean) => {
      w.cacheNumbers = v;
    },
  });
  (mqttPacket as unknown as { writeToStream: Write }).writeToStream = wrapped;
  return write;
}

type Refused = (client: Client, reason: string, detail: string) => void;

interface Parser {
  settings: object;
  emit(event: string | symbol, ...args: unknown[]): boolean;
}

/** An acknowledgement from the client ends a PUBLISH in flight; the next waiting one goes. */
function acknowledged(p: mqttPacket.Packet, conn: Socket & Tagged, link: V5Link): void {
  const id = (p as { messageId?: number }).messageId;
  // QoS 1 ends at PUBACK, QoS 2 at PUBCOMP, or at a PUBREC with an error (§4.3.3, §4.9).
  const ends =
    p.cmd === "puback" ||
    p.cmd === "pubcomp" ||
    (p.cmd === "pubrec" && ((p as { reasonCode?: number }).reasonCode ?? 0) >= 0x80);
  if (!ends || id === undefined || !link.inflight.delete(id)) return;
  const write = plainWrite as Write;
  while (link.waiting.length > 0 && link.inflight.size < link.receiveMax) {
    const next = link.waiting.shift() as mqttPacket.IPublishPacket;
    link.inflight.add(next.messageId as number);
    write(next, conn, OPTS_V5);
  }
}

/**
 * What aedes must not see as it reads them: a PUBLISH that uses a topic alias (none was offered:
 * DISCONNECT 0x94, then closed); a DISCONNECT 0x04 (the will is due: closed as if lost).
 * Acknowledgements of downlinks are noted for the Receive Maximum, then handed on.
 */
function guardPackets(
  client: Client,
  conn: Socket & Tagged,
  link: V5Link,
  parser: Parser,
  refused: Refused,
): void {
  const emit = parser.emit;
  parser.emit = function (this: Parser, event: string | symbol, ...args: unknown[]): boolean {
    if (event === "packet") {
      if (link.closing) return false;
      const p = args[0] as mqttPacket.Packet;
      if (p.cmd === "puback" || p.cmd === "pubrec" || p.cmd === "pubcomp") acknowledged(p, conn, link);
      else if (p.cmd === "disconnect" && p.reasonCode === DISCONNECT_WITH_WILL) {
        // §3.14.2.1 / §3.1.2.5: the will is published; aedes would take the DISCONNECT as clean.
        link.closing = true;
        link.waiting.length = 0;
        conn.destroy();
        return false;
      }
      if (p.cmd === "publish" && p.properties?.topicAlias !== undefined) {
        link.closing = true;
        const refuse = () => {
          refused(client, "protocol-violation", "topic alias (none offered)");
          (plainWrite as Write)({ cmd: "disconnect", reasonCode: TOPIC_ALIAS_INVALID }, conn, OPTS_V5);
          conn.end();
        };
        // Pipelined behind the CONNECT: the DISCONNECT goes after the CONNACK (a refused login closes anyway).
        if ((client as unknown as { connected: boolean }).connected) refuse();
        else client.once("connected", refuse);
        return false;
      }
    }
    return emit.call(this, event, ...args);
  };
}

/** A level-5 CONNECT, before aedes reads it: marked as above, or refused with its reason code. */
function adopt(client: Client, packet: mqttPacket.IConnectPacket, refused: Refused): number {
  const write = wrapWriter();
  const internals = client as unknown as { conn: Socket & Tagged; _parser?: Parser };
  const conn = internals.conn;
  const props = packet.properties;
  const link: V5Link = {
    clientMax: props?.maximumPacketSize ?? Number.POSITIVE_INFINITY,
    serverMax: 0,
    expiryAsked: (props?.sessionExpiryInterval ?? 0) > 0,
    refusal: 0,
    closing: false,
    receiveMax: props?.receiveMaximum ?? DEFAULT_RECEIVE_MAX,
    inflight: new Set(),
    waiting: [],
    overflow: () => refused(client, "downlink-overflow", "receive maximum"),
  };
  conn[V5] = link;
  if (props?.authenticationMethod !== undefined) {
    refused(client, "protocol-violation", "enhanced authentication");
    write({ cmd: "connack", sessionPresent: false, reasonCode: BAD_AUTHENTICATION_METHOD }, conn, OPTS_V5);
    return BAD_AUTHENTICATION_METHOD;
  }
  const parser = internals._parser;
  if (parser !== undefined) {
    parser.settings = SETTINGS_V5;
    guardPackets(client, conn, link, parser, refused);
  }
  // No session is kept for a device (expiry answered 0); aedes checks the level: 4 to it.
  packet.clean = true;
  packet.protocolVersion = 4;
  return 0;
}

/** MQTT 5 CONNECTs let through aedes' level check (installed by aedes-hooks.ts). */
export function admitMqtt5(aedes: Aedes, refused: Refused): void {
  const a = aedes as unknown as {
    preConnect(
      client: Client,
      packet: mqttPacket.IConnectPacket,
      cb: (err: Error | null, ok: boolean) => void,
    ): void;
  };
  const preConnect = a.preConnect.bind(aedes);
  a.preConnect = (client, packet, cb) => {
    if (packet.protocolVersion === 5 && adopt(client, packet, refused) !== 0) {
      (client as unknown as { conn: Socket }).conn.end();
      cb(null, false);
      return;
    }
    preConnect(client, packet, cb);
  };
}
