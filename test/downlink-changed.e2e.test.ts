/**
 * Commands waiting for an MQTT device whose downlink changes (gateway/southbound/pending-downlinks.ts
 * `changedDownlink`, docs/reload.md): a reload that gives the device another model (another
 * downlink topic and encoding) ends them `device-changed`, its operator told to send them again,
 * and nothing is sent on the old topic or the new; a reload that leaves its downlink as it was
 * keeps them waiting for its next login. A YAML profile's downlink topic or command edited (a
 * reload refuses it: a restart applies it) ends them at the start the same way. The journal agrees
 * across a restart. Real gateways on one store, real mqtt.js clients on 127.0.0.1.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { validateConfig } from "../gateway/config/load.js";
import type { ConfigInput } from "../gateway/config/schema.js";
import type { Gateway } from "../gateway/gateway.js";
import { KEY } from "../gateway/state/keys.js";
import { MemoryStore } from "../gateway/state/store.js";
import { OPS, SITE, sleep, type TestClient, testConfig } from "./support/harness.js";
import { oneStoreGateways } from "./support/one-store-gateways.js";

const PROFILE = parse(readFileSync("examples/profiles/template-mqtt.yaml", "utf8")) as {
  model: string;
  mqtt: { downlink: string };
  commands: Record<string, unknown>;
};
const GD2_DOWN = "devices/gd2/k-1/down";

const gateways = oneStoreGateways("ops-downlink-changed");
const { stop, operator, client } = gateways;

async function until(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function start(config: ConfigInput, store: MemoryStore): Promise<Gateway> {
  const g = await gateways.start(config, store);
  // Every downlink the gateway writes, on whichever topic.
  const written: string[] = [];
  const raw = g.publisher.rawDownlink.bind(g.publisher);
  g.publisher.rawDownlink = (topic, payload) => {
    written.push(topic);
    raw(topic, payload);
  };
  downlinks.set(g, written);
  return g;
}
const downlinks = new WeakMap<Gateway, string[]>();

function device(g: Gateway, id: string, password: string): Promise<TestClient> {
  return client(g, id, password);
}

async function command(ops: TestClient, deviceId: string, name: string, id: string): Promise<void> {
  await ops.publish(`linli/${SITE}/cmd/${deviceId}/${name}`, JSON.stringify({ id, by: "Wang Li" }));
  const first = await ops.waitFor(
    (m) => m.topic.endsWith(`/cmd/${deviceId}/${name}/result`) && m.json().id === id,
  );
  expect(first.json()).toMatchObject({ ok: true, sent: false, queued: true });
}

describe("a reload and commands waiting for a device that is away", () => {
  const site = (model: string, extra: Record<string, unknown> = {}): ConfigInput => {
    const base = testConfig();
    return {
      ...base,
      deviceProfiles: [structuredClone(PROFILE) as never],
      devices: [
        ...(base.devices ?? []),
        { id: "k-1", model, password: "pw-k1", household: "hh-1", ...extra } as never,
      ],
      storage: { enabled: false },
    };
  };

  it("another model (another downlink topic): device-changed, said in zh-CN, nothing sent on either topic; a restart agrees", async () => {
    const store = new MemoryStore();
    const g = await start(site("gd2"), store);
    const ops = await operator(g);
    await command(ops, "k-1", "self_test", "s-1");
    expect(store.map.get(KEY.downlinks("k-1"))).toMatchObject({ topic: GD2_DOWN });

    const r = await g.reload(validateConfig(site(PROFILE.model), "new.yaml"));
    expect(r.result).toBe("applied");
    const ended = await ops.waitFor(
      (m) => m.topic.endsWith("/cmd/k-1/self_test/result") && m.json().ok === false,
    );
    expect(ended.json()).toMatchObject({
      deviceId: "k-1",
      command: "self_test",
      id: "s-1",
      by: "Wang Li",
      account: OPS.name,
      sent: false,
      error: "device-changed",
    });
    expect(ended.json().message).toContain("设备的型号或下行配置已更改，命令未发送，请重新发送");
    expect(store.map.has(KEY.downlinks("k-1"))).toBe(false);
    expect(g.pendingDownlinks?.stats()).toMatchObject({ pending: 0, changed: 1, removed: 0 });
    expect(g.counters.rejected("operator", "cmd-device-changed")).toBe(1);
    expect(g.counters.rejected("operator", "cmd-device-removed")).toBe(0);

    // The device as it now is logs in on its new topic: nothing was kept for it, on any topic.
    const k = await device(g, "k-1", "pw-k1");
    expect(await k.subscribe("acme/k-1/cmd")).toBe(1);
    await sleep(200);
    expect(k.on("/cmd")).toEqual([]);
    expect(downlinks.get(g)).toEqual([]);

    // A restart on that journal: no command comes back, nobody is told twice.
    await stop(g);
    const b = await start(site(PROFILE.model), store);
    await operator(b);
    expect(b.pendingDownlinks?.stats()).toMatchObject({ pending: 0, changed: 0 });
    const again = await device(b, "k-1", "pw-k1");
    expect(await again.subscribe("acme/k-1/cmd")).toBe(1);
    await sleep(200);
    expect(again.on("/cmd")).toEqual([]);
    expect(downlinks.get(b)).toEqual([]);
  });

  it("its name and household changed, its downlink not: the command waits, and is sent at its next login", async () => {
    const store = new MemoryStore();
    const g = await start(site("gd2"), store);
    const ops = await operator(g);
    await command(ops, "k-1", "self_test", "s-1");

    const r = await g.reload(
      validateConfig(site("gd2", { name: "厨房报警器", household: "hh-2" }), "new.yaml"),
    );
    expect(r.result).toBe("applied");
    await sleep(200);
    expect(ops.on("/self_test/result").filter((m) => m.json().ok === false)).toEqual([]);
    expect(g.pendingDownlinks?.stats()).toMatchObject({ pending: 1 });
    expect(store.map.get(KEY.downlinks("k-1"))).toMatchObject({ topic: GD2_DOWN });

    const k = await device(g, "k-1", "pw-k1");
    expect(await k.subscribe(GD2_DOWN)).toBe(1);
    const down = await k.waitFor((m) => m.topic === GD2_DOWN);
    expect(down.json()).toEqual({ cmd: "self_test", id: "s-1" });
    await ops.waitFor((m) => m.topic.endsWith("/self_test/result") && m.json().sent === true);
    await until("the PUBACK", () => g.pendingDownlinks?.stats().pending === 0);
    expect(store.map.has(KEY.downlinks("k-1"))).toBe(false);
  });
});

describe("a YAML profile's downlink edited, applied by a restart", () => {
  const site = (edit: (p: typeof PROFILE) => void = () => {}): ConfigInput => {
    const profile = structuredClone(PROFILE);
    edit(profile);
    return testConfig({
      deviceProfiles: [profile as never],
      devices: [{ id: "smoke-1", model: PROFILE.model, password: "pw-s1" } as never],
      storage: { enabled: false },
    });
  };

  it.each([
    ["its downlink topic", (p: typeof PROFILE) => (p.mqtt.downlink = "acme/{id}/down"), "acme/smoke-1/down"],
    [
      "its command's message",
      (p: typeof PROFILE) => (p.commands.silence = { cmd: "hush" }),
      "acme/smoke-1/cmd",
    ],
  ])("%s: the waiting command ends device-changed at the start, and is not sent", async (_, edit, topic) => {
    const store = new MemoryStore();
    const a = await start(site(), store);
    const ops = await operator(a);
    await command(ops, "smoke-1", "silence", "c-1");
    // A reload cannot apply an edited profile: refused, the command still waits.
    expect((await a.reload(validateConfig(site(edit), "new.yaml"))).result).toBe("refused");
    expect(a.pendingDownlinks?.stats()).toMatchObject({ pending: 1 });
    await stop(a);

    const b = await start(site(edit), store);
    const ops2 = await operator(b);
    const ended = await ops2.waitFor(
      (m) => m.topic.endsWith("/cmd/smoke-1/silence/result") && m.json().ok === false,
    );
    expect(ended.json()).toMatchObject({ id: "c-1", by: "Wang Li", sent: false, error: "device-changed" });
    expect(b.counters.rejected("operator", "cmd-device-changed")).toBe(1);
    expect(b.pendingDownlinks?.stats()).toMatchObject({ pending: 0, changed: 1 });
    expect(store.map.has(KEY.downlinks("smoke-1"))).toBe(false);
    const s = await device(b, "smoke-1", "pw-s1");
    expect(await s.subscribe(topic)).toBe(1);
    await sleep(200);
    expect(s.on("acme/")).toEqual([]);
    expect(downlinks.get(b)).toEqual([]);
  });

  it("the profile as it was: the command waits across the restart and is sent at the device's login", async () => {
    const store = new MemoryStore();
    const a = await start(site(), store);
    const ops = await operator(a);
    await command(ops, "smoke-1", "silence", "c-1");
    await stop(a);

    const b = await start(site(), store);
    await operator(b);
    expect(b.pendingDownlinks?.stats()).toMatchObject({ pending: 1 });
    const s = await device(b, "smoke-1", "pw-s1");
    expect(await s.subscribe("acme/smoke-1/cmd")).toBe(1);
    const down = await s.waitFor((m) => m.topic === "acme/smoke-1/cmd");
    expect(down.json()).toEqual({ cmd: "silence" });
  });
});
