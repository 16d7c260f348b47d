/**
 * aedes' hooks (embedded.ts installs them once): each login decided (login-flow.ts) and its
 * identity kept, persistent sessions' owners and room, every PUBLISH and SUBSCRIBE authorised
 * by the access policy (uplinks handed to ingest, operators' messages to their handlers), and
 * malformed packets and protocol violations counted. What they read and keep is the broker's
 * (HookContext).
 */
import type { Socket } from "node:net";
import type { Aedes, AuthenticateError, Client } from "aedes";
import type { Logger, RateLimitedLog } from "../log.js";
import type { Counters } from "../stats.js";
import type { AccessPolicy, Identity } from "./access.js";
import { forgetConnectPacket, restampOnEmit, skipUplinkForwarding } from "./aedes-patches.js";
import { compactClientEvents } from "./client-memory.js";
import { IDENTIFIER_REJECTED, NOT_AUTHORIZED, SERVER_UNAVAILABLE } from "./connack.js";
import type { SocketLimits } from "./connection-limits.js";
import type { DirectFanout } from "./direct-fanout.js";
import type { DeviceFrontEnd } from "./front/device-front.js";
import type { BrokerHandlers } from "./handlers.js";
import { decideLogin, type LoginDecision, type LoginDeps } from "./login-flow.js";
import { admitMqtt5, UNSUPPORTED_PROTOCOL_VERSION, v5LinkOf } from "./mqtt5.js";
import { deliverToOperator, type SlowSubscribers } from "./operator-delivery.js";
import type { PubackQueue } from "./puback-queue.js";
import type { SessionPersistence } from "./sessions.js";
import type { AedesTakeover } from "./takeover.js";
import type { Connection } from "./transports.js";

/** What the hooks read and keep: the broker's own state (embedded.ts hookContext()). */
export interface HookContext {
  aedes: Aedes;
  policy: AccessPolicy;
  handlers: BrokerHandlers;
  counters: Counters;
  log: Logger;
  rateLog: RateLimitedLog;
  limits: SocketLimits;
  sessions: SessionPersistence;
  loginDeps: LoginDeps;
  /** Logged-in clients' identities, kept here at login. */
  identities: WeakMap<Client, Identity>;
  /** The will packets of connected clients. */
  wills: WeakSet<object>;
  transports: WeakMap<Client, Pick<Connection, "transport" | "certNames">>;
  fanout: DirectFanout;
  slowSubscribers: SlowSubscribers;
  urgentTopicPrefixes: readonly string[];
  takeover: AedesTakeover;
  /** The device listener, when configured (started after the hooks are installed). */
  front(): DeviceFrontEnd | null;
  /** A device connection's QoS 1 PUBACK queue. */
  pubacks(client: Client): PubackQueue;
  /** That queue if the connection has one yet (it is made at its first QoS 1 uplink). */
  pubackQueue(client: Client): PubackQueue | undefined;
  /** An uplink of the connection was not kept (its PUBACK queue is refusing): it takes nothing more in. */
  uplinksRefused(client: Client): boolean;
}

/** CONNACK 1 (MQTT 3.1.1 §3.2.2.3): aedes' answer to a CONNECT of a level it does not speak (MQTT 5). */
const UNACCEPTABLE_PROTOCOL_VERSION = 1;
/**
 * aedes' own protocol checks, by their messages (lib/handlers, lib/utils.js validateTopic): a
 * second CONNECT or a packet a client never sends ("Invalid protocol"), a wildcard or empty
 * topic in a PUBLISH, a malformed filter in a SUBSCRIBE or UNSUBSCRIBE.
 */
const PROTOCOL_VIOLATION =
  /^(Invalid protocol$|impossible to (UN)?SUBSCRIBE to an empty topic|[#+] is (not|only) allowed in |topic has too many levels|empty topic not allowed in PUBLISH)/;

/**
 * mqtt-packet's refusal to write a SUBACK without return codes: the answer to a SUBSCRIBE without
 * a topic filter (§3.8.3-3), which its parser lets through. The frame guard closes such a packet
 * before aedes reads it (limits.ts), on every listener: this is the check behind it.
 */
const UNWRITABLE_SUBACK = "Invalid qos vector";

class RefusedError extends Error {
  returnCode?: number;
}

/**
 * A connection aedes closed for a malformed packet (mqtt-packet's parser refused it) or a
 * protocol violation (aedes' own checks): counted and logged as the device listener does. Other
 * errors are not: refused logins, publishes and limits are counted where they are decided, and
 * a socket's own errors (a reset) are no one's violation.
 */
function countProtocolError(ctx: HookContext, client: Client | null | undefined, err: Error): void {
  if (!client) return;
  const parser = (client as unknown as { _parser?: { error: Error | null } })._parser;
  const reason =
    parser?.error === err || err.message === UNWRITABLE_SUBACK
      ? "malformed-packet"
      : (err as { errorCode?: number }).errorCode === UNACCEPTABLE_PROTOCOL_VERSION ||
          PROTOCOL_VIOLATION.test(err.message)
        ? "protocol-violation"
        : null;
  if (reason === null) return;
  const identity = ctx.identities.get(client);
  // As on the device listener: `connection` before login, the identity's model after.
  const model =
    identity === undefined ? "connection" : identity.kind === "device" ? identity.device.model : "operator";
  ctx.counters.reject(model, reason);
  const address = (client as unknown as { conn?: Socket }).conn?.remoteAddress ?? "unknown";
  const who =
    identity === undefined ? address : identity.kind === "device" ? identity.device.id : identity.name;
  ctx.rateLog.warn(
    who,
    reason,
    {
      who,
      clientId: client.id,
      reason,
      detail: err.message,
      transport: ctx.transports.get(client)?.transport,
    },
    "connection closed: malformed packet or protocol violation",
  );
}

/** An MQTT 5 packet refused in mqtt5.ts (a topic alias, enhanced authentication): counted and logged. */
function countRefusedV5(ctx: HookContext, client: Client, reason: string, detail: string): void {
  const identity = ctx.identities.get(client);
  const model =
    identity === undefined ? "connection" : identity.kind === "device" ? identity.device.model : "operator";
  ctx.counters.reject(model, reason);
  const who =
    identity === undefined
      ? ((client as unknown as { conn?: Socket }).conn?.remoteAddress ?? "unknown")
      : identity.kind === "device"
        ? identity.device.id
        : identity.name;
  ctx.rateLog.warn(
    who,
    reason,
    { who, clientId: client.id, reason, detail },
    "connection closed: MQTT 5 feature not offered",
  );
}

/**
 * A client id whose persistent session belongs to an operator is that
 * operator's alone (else another account would receive its queued alerts,
 * or wipe them with a clean session). A new persistent session beyond
 * maxSessions is refused while every kept one is connected.
 */
function sessionRefusal(ctx: HookContext, client: Client, identity: Identity): RefusedError | null {
  const sessions = ctx.sessions;
  const name = identity.kind === "operator" ? identity.name : identity.device.id;
  const owner = sessions.ownerOf(client.id);
  let reason: string;
  let code: number;
  if (owner !== undefined && !(identity.kind === "operator" && identity.name === owner)) {
    reason = "client-id-taken";
    code = IDENTIFIER_REJECTED;
  } else if (identity.kind === "operator" && client.clean === false && !sessions.admit(client.id)) {
    reason = "sessions-full";
    code = SERVER_UNAVAILABLE;
  } else {
    return null;
  }
  ctx.counters.reject(identity.kind === "operator" ? "operator" : identity.device.model, reason);
  ctx.rateLog.warn(name, reason, { who: name, clientId: client.id, reason }, "connection refused");
  const err = new RefusedError(`connection refused: ${reason}`);
  err.returnCode = code;
  return err;
}

/** A login decided (login-flow.ts): the refusal answered, or the identity kept. */
function authenticated(
  ctx: HookContext,
  client: Client,
  decision: LoginDecision,
  done: (err: AuthenticateError | null, ok: boolean) => void,
): void {
  if (!decision.ok) {
    // Closed while it waited for verification: nobody to answer.
    const err = new RefusedError(
      decision.reason === "gone"
        ? "connection closed during authentication"
        : `connection refused: ${decision.reason}`,
    );
    if (decision.reason !== "gone") err.returnCode = decision.returnCode;
    done(err as AuthenticateError, false);
    return;
  }
  const identity = decision.identity;
  const v5 = v5LinkOf(client);
  if (v5 !== undefined && identity.kind === "operator") {
    // MQTT 5 on these listeners is for devices (mqtt5.ts): consoles keep 3.1.1.
    v5.refusal = UNSUPPORTED_PROTOCOL_VERSION;
    ctx.counters.reject("operator", "mqtt5-devices-only");
    ctx.rateLog.warn(
      identity.name,
      "mqtt5-devices-only",
      { who: identity.name, clientId: client.id, reason: "mqtt5-devices-only" },
      "connection refused: MQTT 5 is for devices; operators connect with MQTT 3.1.1",
    );
    const err = new RefusedError("connection refused: mqtt5-devices-only");
    err.returnCode = NOT_AUTHORIZED;
    done(err as AuthenticateError, false);
    return;
  }
  ctx.limits.loggedIn((client as unknown as { conn: Socket }).conn, identity);
  if (v5 !== undefined) v5.serverMax = ctx.limits.packetLimit((client as unknown as { conn: Socket }).conn);
  const refused = sessionRefusal(ctx, client, identity);
  if (refused !== null) {
    done(refused as AuthenticateError, false);
    return;
  }
  ctx.identities.set(client, identity);
  // MQTT 3.1.1 §3.1.4-2 across listeners: aedes takes over within its own, this from the device listener's.
  const front = ctx.front();
  if (front !== null) {
    front.takeOver(client.id);
    ctx.takeover.admitted(client);
  }
  forgetConnectPacket(client);
  // Deliveries to operators: P1 at once, and a slow reader holds nobody up (operator-delivery.ts).
  // Alerts and telemetry are for operators only (AccessPolicy): devices, the bulk of the
  // connections, keep aedes' own deliver functions (two closures fewer each). Set here, before
  // any SUBSCRIBE is read, because subscriptions capture the deliver function.
  if (identity.kind === "operator") {
    deliverToOperator(client, ctx.urgentTopicPrefixes, ctx.slowSubscribers, (id, packet, connackSent) =>
      ctx.sessions.heldBack(id, packet, connackSent),
    );
    ctx.fanout.add(client);
    client.conn.once("close", () => ctx.fanout.remove(client));
  }
  // aedes has put the CONNECT's will here before authenticating (lib/handlers/connect.js).
  const will = (client as unknown as { _will?: object | null })._will;
  if (will) ctx.wills.add(will);
  done(null, true);
}

export function installHooks(ctx: HookContext): void {
  const a = ctx.aedes;
  restampOnEmit(a);
  admitMqtt5(a, (client, reason, detail) => countRefusedV5(ctx, client, reason, detail));
  // Operators' requests their role does not allow: acknowledged, answered, forwarded to nobody.
  const forbidden = new WeakSet<object>();
  skipUplinkForwarding(
    a,
    (client) => ctx.identities.get(client)?.kind === "device",
    (packet) => forbidden.delete(packet),
  );
  a.authenticate = (client, username, password, done) => {
    const conn = (client as unknown as { conn: Socket }).conn;
    const transport = ctx.transports.get(client);
    decideLogin(ctx.loginDeps, {
      address: ctx.limits.addressOfConnection(conn),
      username,
      password,
      certNames: transport?.certNames ?? [],
      clientId: client.id,
      gone: () => (client as unknown as { closed: boolean }).closed,
      logFields: { transport: transport?.transport },
    }).then(
      (decision) => authenticated(ctx, client, decision, done),
      (err: Error) => {
        ctx.log.error({ err, clientId: client.id }, "authentication failed");
        const e = new RefusedError("connection refused: authentication failed");
        e.returnCode = SERVER_UNAVAILABLE;
        done(e as RefusedError & { returnCode: 3 }, false);
      },
    );
  };

  a.authorizePublish = (client, packet, callback) => {
    // client === null: a will aedes found in its persistence for a client of another broker instance
    // (never ours: the gateway's own publishes do not pass here). It cannot be attributed: refused.
    if (client === null) {
      ctx.counters.reject("unknown", "will-not-allowed");
      ctx.rateLog.warn("(unknown)", "will-not-allowed", { topic: packet.topic }, "orphan will refused");
      return callback(new Error(`will on ${packet.topic} of an unknown client refused`));
    }
    const identity = ctx.identities.get(client);
    const will = ctx.wills.has(packet);
    const decision = identity
      ? ctx.policy.authorizePublish(identity, packet.topic, { retain: packet.retain, will })
      : null;
    if (decision?.ok) {
      const kind = decision.kind;
      if (kind.kind === "uplink" && identity?.kind === "device") {
        // A device's will is its message, taken in like any other (docs/topics.md "Retained messages and wills").
        const contentType = (packet as { properties?: { contentType?: string } }).properties?.contentType;
        if (!will && ctx.uplinksRefused(client)) {
          // An uplink before it was not kept: nothing more is taken in (it would overtake that one,
          // which the device sends again); the connection closes once those before it are answered.
          packet.qos = 0;
          callback(null);
          return;
        }
        if (will) {
          ctx.handlers.uplink(identity.device, packet.payload as Buffer, contentType, callback);
          return;
        }
        if (packet.qos !== 1) {
          // QoS 0 not kept (the lanes full, the device's P1 share used up): closed as a QoS 1 one
          // is, once the QoS 1 uplinks before it are answered (their PUBACKs out first: aedes
          // closing at once lost them and the device sent them again). A closure per QoS 0 uplink
          // (DS-10 and GD-2 heartbeats, datasheets): its completion may come at commit, after this
          // packet's turn, so it cannot be a shared function; no change measured at 10,000 msg/s
          // (bench pipeline, P1 p99 pooled over two points, 3b245b4 against main, alternated).
          ctx.handlers.uplink(identity.device, packet.payload as Buffer, contentType, (err) => {
            const queue = err ? ctx.pubackQueue(client) : undefined;
            if (queue === undefined) return callback(err);
            queue.refuseAfterPending(err as Error);
            callback(null); // as QoS 0 to aedes: nothing of it goes on (skipUplinkForwarding)
          });
          return;
        }
        // QoS 1: the PUBACK is written by the connection's queue once the message is committed, in
        // order; aedes goes on reading at once (puback-queue.ts). As QoS 0 to aedes: no PUBACK of its own.
        const done = ctx.pubacks(client).enqueue(packet.messageId as number);
        if (done === null) return callback(new Error("connection closed: too many unacknowledged uplinks"));
        packet.qos = 0;
        ctx.handlers.uplink(identity.device, packet.payload as Buffer, contentType, done);
        callback(null);
        return;
      }
      if (kind.kind === "operator" && identity?.kind === "operator") {
        if (ctx.handlers.takingActions?.() === false) {
          // Acknowledged and dropped, the request was lost: the client re-sends only what has no PUBACK.
          callback(new Error("gateway stopping: operator request left unacknowledged, to be sent again"));
          return;
        }
        ctx.handlers.operator(
          identity.name,
          kind.action,
          kind.target,
          kind.command,
          packet.payload as Buffer,
        );
        // The PUBACK once the action's records are committed: acknowledged before, a crash in
        // between lost the request (the client re-sends only what has no PUBACK).
        if (ctx.handlers.afterOperatorAction) ctx.handlers.afterOperatorAction(() => callback(null));
        else callback(null);
        return;
      }
      if (kind.kind === "forbidden" && identity?.kind === "operator") {
        if (ctx.handlers.takingActions?.() === false) {
          callback(new Error("gateway stopping: operator request left unacknowledged, to be sent again"));
          return;
        }
        // Refused by answer, not by closing (access.ts): never handed to the action handlers, only
        // answered `forbidden` on the action's result topic, counted and logged (ops.ts).
        forbidden.add(packet);
        (ctx.handlers.forbidden ?? ctx.handlers.operator)(
          identity.name,
          kind.action,
          kind.target,
          kind.command,
          packet.payload as Buffer,
        );
        callback(null);
        return;
      }
    }
    const reason = decision && !decision.ok ? decision.reason : "topic-not-allowed";
    const who = identity ? (identity.kind === "device" ? identity.device.id : identity.name) : client.id;
    ctx.counters.reject(identity?.kind === "device" ? identity.device.model : "operator", reason);
    ctx.rateLog.warn(
      who,
      reason,
      { who, topic: packet.topic, retain: packet.retain, will },
      will ? "will refused" : "publish refused; client disconnected",
    );
    // MQTT 3.1.1 §3.3.5: the server must either acknowledge or close the connection; closing tells the
    // client. §3.3.1.3 obliges a server that accepts a retained message to store it, so a refused
    // retain closes the connection too. A refused will is simply not published (aedes drops it).
    const err = new Error(
      `${will ? "will" : "publish"} to ${packet.topic} not allowed for ${who} (${reason})`,
    );
    const queue = !will && identity?.kind === "device" ? ctx.pubackQueue(client) : undefined;
    if (queue !== undefined) {
      // A device with QoS 1 uplinks before it: closed as for an uplink not kept, once every one
      // before it is answered (those kept acknowledged first), taking nothing more in meanwhile.
      // Closing at once lost their PUBACKs, and the device sent them again (handled twice past
      // its seq window). As QoS 0 to aedes: no PUBACK, nothing of it goes on (skipUplinkForwarding).
      queue.refuseAfterPending(err);
      packet.qos = 0;
      callback(null);
      return;
    }
    callback(err);
  };

  a.authorizeSubscribe = (client, sub, callback) => {
    const identity = ctx.identities.get(client);
    if (identity && ctx.policy.subscribe(identity, sub.topic)) {
      if (ctx.limits.subscribe(client, sub.topic)) return callback(null, sub);
      const who = identity.kind === "device" ? identity.device.id : identity.name;
      ctx.counters.reject(
        identity.kind === "device" ? identity.device.model : "operator",
        "subscriptions-limit",
      );
      ctx.rateLog.warn(
        who,
        "subscriptions-limit",
        { who, filter: sub.topic },
        "subscription refused: too many",
      );
      return callback(null, null);
    }
    const who = identity ? (identity.kind === "device" ? identity.device.id : identity.name) : client.id;
    ctx.counters.reject(
      identity?.kind === "device" ? identity.device.model : "operator",
      "subscribe-not-allowed",
    );
    ctx.rateLog.warn(who, "subscribe-not-allowed", { who, filter: sub.topic }, "subscription refused");
    // A null subscription is refused in the SUBACK with 0x80 (§3.9.3) and the client stays connected.
    callback(null, null);
  };

  // aedes emits "error" when publishing stored wills fails (an orphan will refused above); unhandled,
  // an EventEmitter "error" would throw.
  (a as unknown as NodeJS.EventEmitter).on("error", (err: Error) =>
    ctx.log.warn({ err: err.message }, "broker error"),
  );
  a.on("unsubscribe", (topics, client) => {
    ctx.limits.unsubscribe(client, topics);
    ctx.fanout.changed(client);
  });
  a.on("subscribe", (_subscriptions, client) => ctx.fanout.changed(client));
  // aedes emits "clientReady" just before the client's "connected", whose once-listener's removal
  // turns the client's events back into a dictionary: compacted on the next tick (client-memory.ts).
  a.on("clientReady", (client) => {
    ctx.takeover.ready(client);
    // A persistent session's subscriptions are restored without a "subscribe" event.
    ctx.fanout.changed(client);
    process.nextTick(compactClientEvents, client);
  });
  a.on("clientError", (client, err) => {
    ctx.log.debug({ clientId: client?.id, err: err.message }, "client error");
    countProtocolError(ctx, client, err);
  });
  a.on("connectionError", (client, err) => {
    ctx.log.debug({ clientId: client?.id, err: err.message }, "connection error");
    countProtocolError(ctx, client, err);
  });
}
