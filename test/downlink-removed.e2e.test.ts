/**
 * Commands waiting for an MQTT device that the site file loses while the gateway is down
 * (gateway/southbound/pending-downlinks.ts `restore`, docs/reload.md): the start ends them
 * `device-removed` as a reload's removal does, its operator told from what the journal kept (the
 * device's id and model, who sent it), counted, and the `down/<device>` record deleted, so a
 * second start tells nobody again. Real gateways on one store, real mqtt.js clients on 127.0.0.1.
 */
import { describe, expect, it } from "vitest";
import type { ConfigInput } from "../gateway/config/schema.js";
import { KEY } from "../gateway/state/keys.js";
import { MemoryStore } from "../gateway/state/store.js";
import { OPS, SITE, sleep, testConfig } from "./support/harness.js";
import { oneStoreGateways } from "./support/one-store-gateways.js";

const { start, stop, operator } = oneStoreGateways("ops-downlink-removed");

describe("a start whose site file no longer has a device that commands wait for", () => {
  const withDetector = (locale: "zh-CN" | "en"): ConfigInput => {
    const base = testConfig();
    return {
      ...base,
      site: { ...base.site, locale } as never,
      devices: [
        ...(base.devices ?? []),
        { id: "k-1", model: "gd2", password: "pw-k1", household: "hh-1" } as never,
      ],
      storage: { enabled: false },
    };
  };
  const without = (locale: "zh-CN" | "en"): ConfigInput => {
    const c = withDetector(locale);
    return { ...c, devices: (c.devices ?? []).filter((d) => d.id !== "k-1") };
  };

  it.each([
    ["zh-CN", "燃气报警器 k-1：命令“自检”失败，设备已从配置中移除，命令未发送"],
    [
      "en",
      'gas detector k-1: command "self-test" failed: the device was removed from the configuration; not sent',
    ],
  ] as const)(
    "%s: the operator is told device-removed, counted; a second start tells nobody",
    async (locale, said) => {
      const store = new MemoryStore();
      const a = await start(withDetector(locale), store);
      const ops = await operator(a);
      // The detector is away: the command waits for it, journaled.
      await ops.publish(`linli/${SITE}/cmd/k-1/self_test`, JSON.stringify({ id: "s-1", by: "Wang Li" }));
      const first = await ops.waitFor((m) => m.topic.endsWith("/cmd/k-1/self_test/result"));
      expect(first.json()).toMatchObject({ ok: true, sent: false, queued: true });
      expect(store.map.get(KEY.downlinks("k-1"))).toMatchObject({ model: "gd2" });
      await stop(a);

      // The file loses k-1 while the gateway is down.
      const b = await start(without(locale), store);
      const ops2 = await operator(b);
      const ended = await ops2.waitFor(
        (m) => m.topic.endsWith("/cmd/k-1/self_test/result") && m.json().ok === false,
      );
      expect(ended.json()).toMatchObject({
        deviceId: "k-1",
        command: "self_test",
        id: "s-1",
        by: "Wang Li",
        account: OPS.name,
        sent: false,
        error: "device-removed",
      });
      // Named from the journal's record: its model and id, the site file having no name for it.
      expect(ended.json().message).toBe(said);
      expect(b.counters.rejected("operator", "cmd-device-removed")).toBe(1);
      expect(b.pendingDownlinks?.stats()).toMatchObject({ pending: 0, removed: 1, changed: 0 });
      expect(store.map.has(KEY.downlinks("k-1"))).toBe(false);
      await stop(b);

      // Again: nothing comes back, nobody is told twice.
      const c = await start(without(locale), store);
      const ops3 = await operator(c);
      await sleep(300);
      expect(ops3.on("/cmd/k-1/self_test/result")).toEqual([]);
      expect(c.counters.rejected("operator", "cmd-device-removed")).toBe(0);
      expect(c.pendingDownlinks?.stats()).toMatchObject({ pending: 0, removed: 0 });
    },
  );
});
