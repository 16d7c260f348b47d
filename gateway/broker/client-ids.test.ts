import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { validateConfig } from "../config/load.js";
import { Registry } from "../registry.js";
import type { Identity } from "./access.js";
import { clientIdOwner, mayUseClientId } from "./client-ids.js";

const config = validateConfig({
  site: { id: "s1" },
  operators: [
    { name: "duty", password: "a" },
    { name: "duty-desk", password: "b" },
    { name: "ec200", password: "c" },
  ],
  devices: [
    { id: "0101", model: "ec200", password: "p" },
    { id: "door-1", model: "ds10", password: "q" },
  ],
});
const registry = new Registry(config, { onLost: () => {}, onWelfareDue: () => {} });
const device = (id: string): Identity => ({ kind: "device", device: registry.devices.get(id)! });
const operator = (name: string): Identity => ({ kind: "operator", name });

describe("client ids belong to their owner", () => {
  it("a device uses exactly <model>-<deviceId>; nobody else may", () => {
    expect(mayUseClientId(registry, device("0101"), "ec200-0101")).toBe(true);
    expect(mayUseClientId(registry, device("0101"), "ec200-0101-x")).toBe(false);
    expect(mayUseClientId(registry, device("0101"), "0101")).toBe(false);
    expect(mayUseClientId(registry, device("door-1"), "ds10-door-1")).toBe(true);
    expect(mayUseClientId(registry, device("door-1"), "ec200-0101")).toBe(false);
    // An operator whose name happens to be a model name still cannot take a device's id.
    expect(mayUseClientId(registry, operator("ec200"), "ec200-0101")).toBe(false);
    expect(mayUseClientId(registry, operator("ec200"), "ec200-console")).toBe(true);
  });

  it("an operator uses <name> or <name>-<suffix>; the longest operator name wins", () => {
    expect(mayUseClientId(registry, operator("duty"), "duty")).toBe(true);
    expect(mayUseClientId(registry, operator("duty"), "duty-1")).toBe(true);
    expect(mayUseClientId(registry, operator("duty"), "duty-desk")).toBe(false);
    expect(mayUseClientId(registry, operator("duty"), "duty-desk-1")).toBe(false);
    expect(mayUseClientId(registry, operator("duty-desk"), "duty-desk-1")).toBe(true);
    expect(mayUseClientId(registry, operator("duty-desk"), "console-1")).toBe(false);
    expect(mayUseClientId(registry, operator("duty"), "dutyx")).toBe(false);
    expect(clientIdOwner(registry, "mosq-12345")).toBeNull();
  });

  it("an empty (server-assigned) client id belongs to nobody", () => {
    expect(mayUseClientId(registry, operator("duty"), "")).toBe(false);
    expect(mayUseClientId(registry, operator("duty"), "aedes_1234")).toBe(false);
  });

  it("a model name with a dash (a YAML-described model) still owns <model>-<deviceId>", () => {
    const c = validateConfig({
      site: { id: "s1" },
      deviceProfiles: [parse(readFileSync("examples/profiles/template-mqtt.yaml", "utf8"))],
      devices: [{ id: "smoke-1", model: "acme-smoke", password: "p" }],
    });
    const r = new Registry(c, { onLost: () => {}, onWelfareDue: () => {} });
    const smoke: Identity = { kind: "device", device: r.devices.get("smoke-1")! };
    expect(clientIdOwner(r, "acme-smoke-smoke-1")).toEqual({ kind: "device", id: "smoke-1" });
    expect(mayUseClientId(r, smoke, "acme-smoke-smoke-1")).toBe(true);
    expect(mayUseClientId(r, smoke, "acme-smoke-1")).toBe(false);
  });
});
