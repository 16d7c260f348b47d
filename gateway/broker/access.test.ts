import { describe, expect, it } from "vitest";
import { validateConfig } from "../config/load.js";
import { Registry } from "../registry.js";
import { AccessPolicy } from "./access.js";
import { hashPassword } from "./credentials.js";

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
  it("authenticates devices and operators, refusing the rest with a reason", async () => {
    expect(await policy.authenticate("p1", pw("pw1"))).toMatchObject({
      ok: true,
      identity: { kind: "device" },
      by: "password",
    });
    expect(await policy.authenticate("ops", pw("secret"))).toMatchObject({
      ok: true,
      identity: { kind: "operator", name: "ops" },
    });
    expect(await policy.authenticate("p1", pw("pw"))).toEqual({ ok: false, reason: "bad-password" });
    expect(await policy.authenticate("p1", undefined)).toEqual({ ok: false, reason: "bad-password" });
    expect(await policy.authenticate("ghost", pw("x"))).toEqual({ ok: false, reason: "unknown-device" });
    expect(await policy.authenticate(undefined, undefined)).toEqual({ ok: false, reason: "anonymous" });
  });

  it("a verified certificate naming the account stands for its password; naming another, it does not", async () => {
    expect(await policy.authenticate("p1", undefined, ["p1"])).toMatchObject({ ok: true, by: "certificate" });
    expect(await policy.authenticate(undefined, undefined, ["p1"])).toMatchObject({
      ok: true,
      identity: { kind: "device" },
    });
    expect(await policy.authenticate("d1", undefined, ["p1"])).toEqual({ ok: false, reason: "bad-password" });
    expect(await policy.authenticate("d1", pw("pw2"), ["p1"])).toMatchObject({ ok: true, by: "password" });
  });

  it("hashed passwords verify; a wrong one does not", async () => {
    const hashed = validateConfig({
      site: { id: "s1" },
      operators: [{ name: "ops", password: await hashPassword("s3cret", { log2N: 10 }) }],
    });
    const p = new AccessPolicy("s1", new Registry(hashed, { onLost: () => {}, onWelfareDue: () => {} }));
    expect(await p.authenticate("ops", pw("s3cret"))).toMatchObject({ ok: true });
    expect(await p.authenticate("ops", pw("s3cret "))).toEqual({ ok: false, reason: "bad-password" });
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

describe("AccessPolicy.authorizePublish: retain and wills (docs/security.md, access matrix)", () => {
  const ops = { kind: "operator" as const, name: "ops" };
  const p1 = { kind: "device" as const, device: registry.devices.get("p1")! };
  const plain = { retain: false, will: false };

  it.each([
    "linli/s1/ack/a",
    "linli/s1/shelve/a",
    "linli/s1/unshelve/a",
    "linli/s1/service/p1",
    "linli/s1/away/hh",
    "linli/s1/cmd/p1/locate",
  ])("refuses a retained request and any will on %s", (topic) => {
    expect(policy.authorizePublish(ops, topic, plain)).toMatchObject({ ok: true });
    expect(policy.authorizePublish(ops, topic, { retain: true, will: false })).toEqual({
      ok: false,
      reason: "retain-not-allowed",
    });
    expect(policy.authorizePublish(ops, topic, { retain: false, will: true })).toEqual({
      ok: false,
      reason: "will-not-allowed",
    });
  });

  it("a device's will on its own uplink is its message; elsewhere the topic rule refuses it", () => {
    expect(policy.authorizePublish(p1, "devices/ec200/p1/up", { retain: false, will: true })).toEqual({
      ok: true,
      kind: { kind: "uplink" },
    });
    expect(policy.authorizePublish(p1, "devices/ec200/p1/up", { retain: true, will: true })).toMatchObject({
      ok: true,
    });
    expect(policy.authorizePublish(p1, "devices/ds10/d1/up", { retain: false, will: true })).toEqual({
      ok: false,
      reason: "topic-not-allowed",
    });
  });

  it("ownUplink decides as authorizePublish on the device's own topic: allowed until a reload removes the device", () => {
    const device = registry.devices.get("p1")!;
    expect(policy.ownUplink(device)).toEqual(policy.authorizePublish(p1, "devices/ec200/p1/up", plain));
    expect(policy.ownUplink(device)).toEqual({ ok: true, kind: { kind: "uplink" } });
    device.removed = true;
    try {
      expect(policy.ownUplink(device)).toEqual({ ok: false, reason: "topic-not-allowed" });
      expect(policy.authorizePublish(p1, "devices/ec200/p1/up", plain)).toEqual(policy.ownUplink(device));
    } finally {
      device.removed = false;
    }
  });

  it("topics nobody may publish stay refused whatever the flags", () => {
    for (const flags of [plain, { retain: true, will: false }, { retain: true, will: true }]) {
      expect(policy.authorizePublish(ops, "linli/s1/alerts/p1/FIRE_ALARM/x", flags)).toEqual({
        ok: false,
        reason: "topic-not-allowed",
      });
      expect(policy.authorizePublish(ops, "$SYS/broker/x", flags)).toMatchObject({ ok: false });
    }
  });
});
