/**
 * Who may connect, publish and subscribe (issue 2, item 3). Pure decisions,
 * no broker types, so the rules are readable and testable on their own.
 *
 * - Everyone authenticates; anonymous clients are refused.
 * - A device publishes only to its own uplink and subscribes only to its own downlink.
 * - Operators subscribe under `linli/<site>/` and publish only acknowledgements.
 * - Nobody but the gateway (which publishes from inside the broker, not as a
 *   client) publishes under `linli/`; `$SYS/` is closed to publishers.
 */
import { timingSafeEqual } from "node:crypto";
import type { DeviceEntry, Registry } from "../registry.js";

export type Identity = { kind: "device"; device: DeviceEntry } | { kind: "operator"; name: string };

export type AuthResult =
  | { ok: true; identity: Identity }
  | { ok: false; reason: "anonymous" | "unknown-device" | "bad-password" };

function samePassword(expected: Buffer, given: Buffer | undefined): boolean {
  if (!given || given.length !== expected.length) return false;
  return timingSafeEqual(expected, given);
}

export class AccessPolicy {
  private readonly opsPrefix: string;
  private readonly ackPrefix: string;

  constructor(
    readonly site: string,
    private readonly registry: Registry,
  ) {
    this.opsPrefix = `linli/${site}/`;
    this.ackPrefix = `linli/${site}/ack/`;
  }

  authenticate(username: string | undefined, password: Buffer | undefined): AuthResult {
    if (!username) return { ok: false, reason: "anonymous" };
    const device = this.registry.devices.get(username);
    if (device) {
      return samePassword(device.password, password)
        ? { ok: true, identity: { kind: "device", device } }
        : { ok: false, reason: "bad-password" };
    }
    const operator = this.registry.operators.get(username);
    if (operator) {
      return samePassword(operator, password)
        ? { ok: true, identity: { kind: "operator", name: username } }
        : { ok: false, reason: "bad-password" };
    }
    return { ok: false, reason: "unknown-device" };
  }

  /** The kind of publish allowed, or null when refused. */
  publish(identity: Identity, topic: string): "uplink" | "ack" | null {
    if (identity.kind === "device") return topic === identity.device.uplinkTopic ? "uplink" : null;
    if (topic.startsWith(this.ackPrefix)) {
      const id = topic.slice(this.ackPrefix.length);
      return id.length > 0 && !id.includes("/") ? "ack" : null;
    }
    return null;
  }

  subscribe(identity: Identity, filter: string): boolean {
    if (identity.kind === "device") return filter === identity.device.downlinkTopic;
    // `linli/<site>/#` or anything narrower; a filter starting with a wildcard could match $SYS or devices/.
    return filter.startsWith(this.opsPrefix) || filter === `linli/${this.site}`;
  }
}
