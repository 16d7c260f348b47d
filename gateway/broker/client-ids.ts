/**
 * Client ids belong to their owner (docs/security.md "Client ids"). MQTT lets
 * a new connection with a client id take over the one already connected
 * (MQTT 3.1.1 §3.1.4); without this rule any valid login could knock a pendant
 * off the network by using its id, again and again.
 *
 *   - A device connects only with the datasheet's client id `<model>-<deviceId>`
 *     (`ec200-0101` for pendant 0101), and nobody else may use that id.
 *   - An operator connects with `<name>` or `<name>-<anything>` (`duty-desk`,
 *     `duty-desk-console-2`). Where one operator's name is a prefix of another's
 *     (`duty` and `duty-desk`), an id belongs to the longest name it starts with:
 *     `duty-desk-1` is duty-desk's, not duty's. A device's id wins over both.
 *   - Empty client ids (server-assigned) are refused: an owner cannot be known.
 *
 * The owner itself may reconnect with its id at any time (a base station whose
 * old connection is half-open must get back in): that takeover is allowed.
 */
import type { Registry } from "../registry.js";
import type { Identity } from "./access.js";

export type ClientIdOwner = { kind: "device"; id: string } | { kind: "operator"; name: string } | null;

/** Who a client id belongs to under the rules above, or null (nobody may use it). */
export function clientIdOwner(registry: Registry, clientId: string): ClientIdOwner {
  // Model names and device ids may both hold dashes (a declared model "acme-smoke"): every split is tried.
  for (let dash = clientId.indexOf("-"); dash > 0; dash = clientId.indexOf("-", dash + 1)) {
    const device = registry.devices.get(clientId.slice(dash + 1));
    if (device && device.uplinkTopic !== null && device.model === clientId.slice(0, dash))
      return { kind: "device", id: device.id };
  }
  if (registry.operators.has(clientId)) return { kind: "operator", name: clientId };
  for (let i = clientId.lastIndexOf("-"); i > 0; i = clientId.lastIndexOf("-", i - 1)) {
    const name = clientId.slice(0, i);
    if (registry.operators.has(name)) return { kind: "operator", name };
  }
  return null;
}

/** Whether `identity` may connect with `clientId`. */
export function mayUseClientId(registry: Registry, identity: Identity, clientId: string): boolean {
  if (clientId.length === 0 || clientId.startsWith("aedes_")) return false;
  const owner = clientIdOwner(registry, clientId);
  if (owner === null) return false;
  return identity.kind === "device"
    ? owner.kind === "device" && owner.id === identity.device.id
    : owner.kind === "operator" && owner.name === identity.name;
}
