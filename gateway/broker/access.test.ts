import { describe, expect, it } from "vitest";
import { validateConfig } from "../config/load.js";
import { Registry } from "../registry.js";
import { AccessPolicy } from "./access.js";

const config = validateConfig({
  site: { id: "s1" },
  operators: [{ name: "ops", password: "secret" }],
  devices: [
    { id: "p1", model: "ec200", password: "pw1" },
    { id: "d1", model: "ds10", password: "pw2" },
  ],
});
const registry = new Registry(config, { onLost: () => {}, onWelfareDue: () => {} });
const policy = new AccessPolicy("s1", registry);
const pw = (s: string) => Buffer.from(s);

describe("AccessPolicy", () => {
  it("authenticates devices and operators, refusing the rest with a reason", () => {
    expect(policy.authenticate("p1", pw("pw1"))).toMatchObject({ ok: true, identity: { kind: "device" } });
    expect(policy.authenticate("ops", pw("secret"))).toMatchObject({
      ok: true,
      identity: { kind: "operator", name: "ops" },
    });
    expect(policy.authenticate("p1", pw("pw"))).toEqual({ ok: false, reason: "bad-password" });
    expect(policy.authenticate("p1", undefined)).toEqual({ ok: false, reason: "bad-password" });
    expect(policy.authenticate("ghost", pw("x"))).toEqual({ ok: false, reason: "unknown-device" });
    expect(policy.authenticate(undefined, undefined)).toEqual({ ok: false, reason: "anonymous" });
  });

  it("a device publishes only its own uplink and subscribes only its own downlink", () => {
    const p1 = { kind: "device" as const, device: registry.devices.get("p1")! };
    expect(policy.publish(p1, "devices/ec200/p1/up")).toEqual({ kind: "uplink" });
    expect(policy.publish(p1, "devices/ds10/d1/up")).toBeNull();
    expect(policy.publish(p1, "linli/s1/ack/x")).toBeNull();
    expect(policy.subscribe(p1, "devices/ec200/p1/down")).toBe(true);
    expect(policy.subscribe(p1, "devices/ec200/+/down")).toBe(false);
    expect(policy.subscribe(p1, "#")).toBe(false);
  });

  it("operators subscribe under their site and publish only acknowledgements", () => {
    const ops = { kind: "operator" as const, name: "ops" };
    expect(policy.subscribe(ops, "linli/s1/#")).toBe(true);
    expect(policy.subscribe(ops, "linli/s1/alerts/p1/+/+")).toBe(true);
    expect(policy.subscribe(ops, "linli/+/alerts/#")).toBe(false);
    expect(policy.subscribe(ops, "#")).toBe(false);
    expect(policy.subscribe(ops, "devices/#")).toBe(false);
    expect(policy.publish(ops, "linli/s1/ack/abc")).toEqual({
      kind: "operator",
      action: "ack",
      target: "abc",
      command: null,
    });
    expect(policy.publish(ops, "linli/s1/shelve/abc")).toMatchObject({ action: "shelve", target: "abc" });
    expect(policy.publish(ops, "linli/s1/cmd/panel-1/reset")).toEqual({
      kind: "operator",
      action: "cmd",
      target: "panel-1",
      command: "reset",
    });
    expect(policy.publish(ops, "linli/s1/cmd/panel-1/reset/result")).toBeNull();
    expect(policy.publish(ops, "linli/s1/cmd/panel-1")).toBeNull();
    expect(policy.publish(ops, "linli/s1/escalations/p1/X/y")).toBeNull();
    expect(policy.publish(ops, "linli/s1/ack/")).toBeNull();
    expect(policy.publish(ops, "linli/s1/ack/a/b")).toBeNull();
    expect(policy.publish(ops, "linli/s1/alerts/p1/FIRE_ALARM/x")).toBeNull();
    expect(policy.publish(ops, "linli/s1/telemetry/ec200/p1")).toBeNull();
    expect(policy.publish(ops, "devices/ec200/p1/down")).toBeNull();
  });
});
