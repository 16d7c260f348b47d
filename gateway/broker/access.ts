/**
 * Who may connect, publish and subscribe (docs/security.md, access matrix). Pure decisions,
 * no broker types, so the rules are readable and testable on their own.
 *
 * - Everyone authenticates; anonymous clients are refused.
 * - A device publishes only to its own uplink and subscribes only to its own downlink.
 * - Operators subscribe under `linli/<site>/` and publish only their requests, those their
 *   role allows (operator-roles.ts): a request topic beyond the role is `forbidden`, taken in
 *   (acknowledged, forwarded to nobody) only to be answered `forbidden` on its result topic.
 * - Nobody but the gateway (which publishes from inside the broker, not as a
 *   client) publishes under `linli/`; `$SYS/` is closed to publishers.
 * - A will is judged as a publish by the same client when it falls due
 *   (docs/topics.md, "Retained messages and wills"): a device's will on its own uplink is its message; an
 *   operator's will is never an operator request (a dropped connection is not
 *   someone acknowledging an alert).
 * - Operator requests are never retained: a retained `ack/...` would be replayed
 *   to every console subscribed to `linli/<site>/#`.
 */
import { type OperatorAction, operatorTopic, roleMay } from "../operator-actions.js";
import type { DeviceEntry, Registry } from "../registry.js";
import { PasswordVerifier, parseSecret } from "./credentials.js";
import type { Claimant } from "./login-guard.js";

export type { OperatorAction } from "../operator-actions.js";

export type PublishKind =
  | { kind: "uplink" }
  | { kind: "operator"; action: OperatorAction; target: string; command: string | null }
  /**
   * A request topic the account's role does not allow: nothing of it is taken (no action, no
   * forwarding); the gateway answers it `forbidden` (ops.ts) and the connection stays, else a
   * client keeping its unacknowledged QoS 1 request would send it again at every reconnect.
   */
  | { kind: "forbidden"; action: OperatorAction; target: string; command: string | null };
const UPLINK: PublishKind = { kind: "uplink" };
/** Decisions without a per-message part, shared: a device's uplink is decided for every message. */
const UPLINK_ALLOWED: PublishDecision = Object.freeze({ ok: true, kind: UPLINK });
const TOPIC_NOT_ALLOWED: PublishDecision = Object.freeze({ ok: false, reason: "topic-not-allowed" });

/** Topic ids: 1 to 64 characters, none of them a separator or wildcard. */
function isTopicId(s: string | undefined): boolean {
  return s !== undefined && s.length > 0 && s.length <= 64 && !/[/+#\s]/.test(s);
}

/** Why a publish (or a will) is refused; each is a counted reason (gateway/stats.ts). */
export type PublishRefusal = "topic-not-allowed" | "retain-not-allowed" | "will-not-allowed";

export type PublishDecision = { ok: true; kind: PublishKind } | { ok: false; reason: PublishRefusal };

export type Identity = { kind: "device"; device: DeviceEntry } | { kind: "operator"; name: string };

export type AuthResult =
  | { ok: true; identity: Identity; by: "password" | "certificate" }
  | { ok: false; reason: "anonymous" | "unknown-device" | "bad-password" | "auth-busy" | "gone" };

export class AccessPolicy {
  private readonly opsPrefix: string;

  constructor(
    readonly site: string,
    readonly registry: Registry,
    private readonly verifier = new PasswordVerifier(),
  ) {
    this.opsPrefix = `linli/${site}/`;
  }

  /**
   * The account named `name`, with its password as the config gives it (plain or an scrypt hash;
   * null: certificate only), or null. The registry keeps the config's string, not a parsed
   * secret (a Buffer, or salt and hash Buffers, per device: ~0.14 KB plain, ~0.3 KB hashed, for
   * 10,000 devices 1.4-3 MB); it is parsed at each login, beside which that costs nothing.
   */
  private account(name: string): { identity: Identity; secret: string | null } | null {
    const device = this.registry.devices.get(name);
    // Polled devices have no MQTT account.
    if (device)
      return device.uplinkTopic === null
        ? null
        : { identity: { kind: "device", device }, secret: device.password };
    const operator = this.registry.operators.get(name);
    return operator === undefined ? null : { identity: { kind: "operator", name }, secret: operator };
  }

  /**
   * Whose login this is, for the login bans' scopes (login-guard.ts): the kind of account the
   * username (or, without one, the certificate's first name) names, or "unknown".
   */
  claimant(username: string | undefined, certNames: readonly string[] = []): Claimant {
    const name = username || certNames[0];
    const account = name ? this.account(name) : null;
    return account === null ? "unknown" : account.identity.kind;
  }

  /**
   * Who is connecting. `certNames`: the names in a client certificate the
   * listener's CA verified (gateway/broker/transports.ts). A certificate that
   * names the account (the username, or without a username its first name)
   * stands for the password; otherwise the password is verified
   * (gateway/broker/credentials.ts: hashed or plain, constant-time).
   */
  async authenticate(
    username: string | undefined,
    password: Buffer | undefined,
    certNames: readonly string[] = [],
    /** The connection closed meanwhile: no password work is spent on it. */
    gone?: () => boolean,
  ): Promise<AuthResult> {
    const name = username || certNames[0];
    if (!name) return { ok: false, reason: "anonymous" };
    const account = this.account(name);
    if (account === null) return { ok: false, reason: "unknown-device" };
    if (certNames.includes(name)) return { ok: true, identity: account.identity, by: "certificate" };
    if (account.secret === null) return { ok: false, reason: "bad-password" };
    const verdict = await this.verifier.verify(parseSecret(account.secret), password, gone);
    if (verdict === "busy") return { ok: false, reason: "auth-busy" };
    if (verdict === "gone") return { ok: false, reason: "gone" };
    // A reload may have removed or changed the account while scrypt ran.
    if (verdict !== "ok" || this.account(name)?.secret !== account.secret)
      return { ok: false, reason: "bad-password" };
    return { ok: true, identity: account.identity, by: "password" };
  }

  /**
   * What a publish is, or null when refused. Devices: their own uplink only.
   * Operators (docs/topics.md): the topics of the operator action table
   * (operator-actions.ts): `linli/<site>/<action>/<target>`, and
   * `linli/<site>/cmd/<deviceId>/<command>` for device commands; `forbidden` when the
   * operator's role does not allow the action.
   */
  publish(identity: Identity, topic: string): PublishKind | null {
    // A reload may have removed the identity after it connected (gateway/reload.ts).
    if (identity.kind === "device")
      return topic === identity.device.uplinkTopic && !identity.device.removed ? UPLINK : null;
    if (!topic.startsWith(this.opsPrefix) || !this.registry.operators.has(identity.name)) return null;
    const op = operatorTopic(topic.slice(this.opsPrefix.length).split("/"), isTopicId);
    if (op === null) return null;
    // The role now: a reload may have changed it since the account connected.
    return roleMay(this.registry.roleOf(identity.name), op.action)
      ? { kind: "operator", ...op }
      : { kind: "forbidden", ...op };
  }

  /**
   * The whole publish rule: topic (publish() above), then the retain flag and
   * wills. A device's retain flag is left alone: its uplink is consumed by the
   * gateway and never stored or forwarded (EmbeddedBroker.skipUplinkForwarding).
   */
  authorizePublish(
    identity: Identity,
    topic: string,
    flags: { retain: boolean; will: boolean },
  ): PublishDecision {
    const kind = topic.startsWith("$SYS/") ? null : this.publish(identity, topic);
    if (kind === null) return TOPIC_NOT_ALLOWED;
    if (kind === UPLINK) return UPLINK_ALLOWED;
    if (kind.kind === "operator" || kind.kind === "forbidden") {
      if (flags.will) return { ok: false, reason: "will-not-allowed" };
      if (flags.retain) return { ok: false, reason: "retain-not-allowed" };
    }
    return { ok: true, kind };
  }

  /**
   * authorizePublish() for a device's publish on its own uplink topic, which the device listener's
   * worker has already matched byte for byte (front/fast-publish.ts, or its parser's path): what is
   * left to decide is whether a reload removed the device since. Builds no topic string (two per
   * uplink before: the caller's and publish()'s own).
   */
  ownUplink(device: DeviceEntry): PublishDecision {
    return device.removed ? TOPIC_NOT_ALLOWED : UPLINK_ALLOWED;
  }

  subscribe(identity: Identity, filter: string): boolean {
    if (identity.kind === "device") return filter === identity.device.downlinkTopic;
    // `linli/<site>/#` or anything narrower; a filter starting with a wildcard could match $SYS or devices/.
    return filter.startsWith(this.opsPrefix) || filter === `linli/${this.site}`;
  }
}
