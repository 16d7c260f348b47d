/**
 * Live reconfiguration under load (docs/reload.md): pendants publish all the
 * time while a reload adds a device, changes thresholds, changes a password
 * and removes a device with an open alert; then an invalid file is refused.
 * Real gateway, real aedes broker, real mqtt.js clients on 127.0.0.1.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfigFile, validateConfig } from "../gateway/config/load.js";
import type { ConfigInput } from "../gateway/config/schema.js";
import type { Gateway } from "../gateway/gateway.js";
import {
  connect,
  doorMsg,
  OPS,
  pendantMsg,
  SITE,
  sleep,
  startGateway,
  type TestClient,
} from "./support/harness.js";
import { suiteTempDir } from "./support/temp-dir.js";

const LOAD = ["L-1", "L-2", "L-3", "L-4", "L-5", "L-6"];
const pw = (id: string) => `pw-${id}`;

function siteConfig(change: (c: ConfigInput) => void = () => {}): ConfigInput {
  const c: ConfigInput = {
    site: { id: SITE },
    mqtt: { listeners: [{ host: "127.0.0.1", port: 0 }] },
    operators: [OPS, { name: "ops-gone", password: "ops-gone-pw" }],
    households: [{ id: "hh-1" }, { id: "hh-2" }],
    devices: [
      ...LOAD.map((id) => ({ id, model: "ec200" as const, password: pw(id), household: "hh-1" })),
      { id: "d-1", model: "ds10", password: pw("d-1"), household: "hh-1", holdOpenTime: "60s" },
      { id: "p-gone", model: "ec200", password: pw("p-gone"), household: "hh-2" },
      { id: "p-pw", model: "ec200", password: "old-secret", household: "hh-2" },
    ],
    log: { level: "silent" },
    metrics: { host: "127.0.0.1", port: 0 },
  };
  change(c);
  return c;
}

const newConfig = () =>
  siteConfig((c) => {
    const devices = (c.devices ?? []).filter((d) => d.id !== "p-gone");
    for (const d of devices) {
      if (d.id === "d-1") (d as { holdOpenTime: string }).holdOpenTime = "1s";
      if (d.id === "p-pw") (d as { password: string }).password = "new-secret";
    }
    devices.push({ id: "p-new", model: "ec200", password: pw("p-new"), household: "hh-2" });
    c.devices = devices;
    c.alerts = { escalation: { p1: "2s" } };
    c.operators = [OPS];
  });

/** One pendant publishing at QoS 1 without pause: heartbeats, and every 4th message a press. */
class Publisher {
  presses = 0;
  sent = 0;
  failed = 0;
  private seq = 1;
  private running = true;
  readonly done: Promise<void>;
  /** A publish in flight when the server closes the connection never completes (no reconnect). */
  private readonly closed: Promise<"closed">;
  constructor(readonly client: TestClient) {
    this.closed = new Promise((resolve) => client.client.once("close", () => resolve("closed")));
    this.done = this.loop();
  }
  private async loop(): Promise<void> {
    while (this.running) {
      const seq = this.seq++;
      const press = seq % 4 === 0;
      try {
        const topic = `devices/ec200/${this.client.client.options.username}/up`;
        const r = await Promise.race([
          this.client.publish(topic, pendantMsg(seq, press ? "press" : null)),
          this.closed,
        ]);
        if (r === "closed") throw new Error("connection closed by the server");
        this.sent++;
        if (press) this.presses++;
      } catch {
        this.failed++;
        return;
      }
      await sleep(2);
    }
  }
  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

const metricValue = (text: string, series: string) => {
  const line = text.split("\n").find((l) => l.startsWith(series));
  return line === undefined ? null : Number(line.slice(series.length).trim());
};

describe("reload under load", () => {
  const dir = suiteTempDir("linli-reload-");

  it("adds a device and changes thresholds without losing an alert or dropping an unchanged device; refuses an invalid file", async () => {
    const gw: Gateway = await startGateway({ config: siteConfig() });
    const clients: TestClient[] = [];
    const load: Publisher[] = [];
    try {
      const ops = await connect(gw, OPS.name, OPS.password);
      clients.push(ops);
      await ops.subscribe(`linli/${SITE}/#`);
      const opsGone = await connect(gw, "ops-gone", "ops-gone-pw");
      clients.push(opsGone);

      // A removed device's open alert, raised before the reload.
      const gone = await connect(gw, "p-gone", pw("p-gone"));
      clients.push(gone);
      await gone.publish("devices/ec200/p-gone/up", pendantMsg(1, "press"));
      const goneAlert = await ops.waitFor(
        (m) => m.topic === `linli/${SITE}/alerts/p1/EMERGENCY_CALL/p-gone`,
        10_000,
      );
      const goneId = goneAlert.json().id as string;

      const door = await connect(gw, "d-1", pw("d-1"));
      const pwDevice = await connect(gw, "p-pw", "old-secret");
      clients.push(door, pwDevice);
      await door.publish("devices/ds10/d-1/up", doorMsg(1, "closed"));

      for (const id of LOAD) {
        const c = await connect(gw, id, pw(id));
        clients.push(c);
        load.push(new Publisher(c));
      }
      // Load is flowing before the reload.
      const t0 = Date.now();
      while (load.some((p) => p.presses < 3) && Date.now() - t0 < 15_000) await sleep(20);
      expect(load.every((p) => p.presses >= 3)).toBe(true);

      const result = await gw.reload(validateConfig(newConfig(), "new.yaml"));
      expect(result.result).toBe("applied");
      if (result.result !== "applied") throw new Error("refused");
      expect(result.changes.devices).toEqual({
        added: ["p-new"],
        removed: ["p-gone"],
        replaced: [],
        changed: [
          { id: "d-1", fields: ["holdOpenTime"] },
          { id: "p-pw", fields: ["password"] },
        ],
      });
      expect(result.changes.alerts).toEqual(["alerts.escalation.p1"]);
      expect(result.restartNeeded).toEqual([]);
      expect(result.changes.operators).toEqual({ added: [], removed: ["ops-gone"], changed: [], roles: [] });
      expect(result.closedAlerts).toBe(1);
      expect(result.disconnected).toBe(3);

      // Load goes on after the reload, then stops.
      const after = load.map((p) => p.presses);
      const t1 = Date.now();
      while (load.some((p, i) => p.presses < (after[i] ?? 0) + 3) && Date.now() - t1 < 15_000)
        await sleep(20);
      for (const p of load) await p.stop();

      // No unchanged device was disconnected, none had a publish refused.
      for (const p of load) {
        expect(p.failed).toBe(0);
        expect(p.client.closedByServer).toBe(false);
      }
      expect(door.closedByServer).toBe(false);
      expect(ops.closedByServer).toBe(false);
      await waitUntil(() => opsGone.closedByServer);

      // No alert lost: every PUBACKed press is counted in its pendant's one open call.
      for (const [i, p] of load.entries()) {
        const topic = `linli/${SITE}/alerts/p1/EMERGENCY_CALL/${LOAD[i]}`;
        await ops.waitFor(
          (m) => m.topic === topic && m.payload.length > 0 && m.json().count === p.presses,
          10_000,
        );
        expect(gw.engine.find(LOAD[i] as string, "EMERGENCY_CALL")?.count).toBe(p.presses);
      }

      // The removed device: its alert closed by the gateway with the reason, retained copies gone.
      const closed = await ops.waitFor(
        (m) =>
          m.topic === `linli/${SITE}/alerts/events` &&
          m.json().alertId === goneId &&
          m.json().transition === "closed",
        10_000,
      );
      expect(closed.json()).toMatchObject({
        state: "closed",
        by: "gateway",
        reason: "device removed from the configuration",
        deviceId: "p-gone",
      });
      // Its last state says why it ended: an unanswered call is not read as handled.
      const closedState = await ops.waitFor(
        (m) => m.topic === goneAlert.topic && m.payload.length > 0 && m.json().state === "closed",
        10_000,
      );
      expect(closedState.json().message).toMatch(/；已结束：设备已从站点配置中删除$/);
      await ops.waitFor((m) => m.topic === goneAlert.topic && m.payload.length === 0, 10_000);
      await ops.waitFor(
        (m) => m.topic === `linli/${SITE}/devices/p-gone/status` && m.payload.length === 0,
        10_000,
      );
      expect(gw.engine.byAlertId(goneId)).toBeUndefined();
      await waitUntil(() => gone.closedByServer);
      await expect(connect(gw, "p-gone", pw("p-gone"))).rejects.toThrow(
        /Bad username or password|Not authorized|refused/i,
      );

      // A changed password: the old session is closed, the old password refused, the new one works.
      await waitUntil(() => pwDevice.closedByServer);
      await expect(connect(gw, "p-pw", "old-secret")).rejects.toThrow();
      const pwAgain = await connect(gw, "p-pw", "new-secret");
      clients.push(pwAgain);
      await pwAgain.publish("devices/ec200/p-pw/up", pendantMsg(1, null));

      // The new device connects and raises an alert, which escalates on the new P1 time (2 s).
      const fresh = await connect(gw, "p-new", pw("p-new"));
      clients.push(fresh);
      await fresh.publish("devices/ec200/p-new/up", pendantMsg(1, "press"));
      const raised = await ops.waitFor(
        (m) => m.topic === `linli/${SITE}/alerts/p1/EMERGENCY_CALL/p-new`,
        10_000,
      );
      expect(raised.json()).toMatchObject({ state: "active-unacknowledged", household: "hh-2" });
      await ops.waitFor((m) => m.topic === `linli/${SITE}/escalations/p1/EMERGENCY_CALL/p-new`, 10_000);

      // The door's new hold-open time (1 s instead of 60 s).
      await door.publish("devices/ds10/d-1/up", doorMsg(2, "open"));
      await ops.waitFor((m) => m.topic === `linli/${SITE}/alerts/p3/DOOR_HELD_OPEN/d-1`, 10_000);

      // An invalid file: refused with config check's message, the running configuration kept.
      const bad = join(dir, "bad.yaml");
      writeFileSync(
        bad,
        "site:\n  id: t1\ndevices:\n  - id: p1\n    model: ec200\n    password: x\n    heartbeatInterval: soon\n",
      );
      let checkMessage = "";
      try {
        loadConfigFile(bad);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        checkMessage = (err as Error).message;
      }
      expect(checkMessage).toContain(`${bad}:7: devices[0].heartbeatInterval: expected a duration`);
      const refused = await gw.reload(() => loadConfigFile(bad));
      expect(refused).toMatchObject({ result: "refused", message: checkMessage });
      expect(gw.config.devices.map((d) => d.id)).toContain("p-new");
      expect(gw.registry.devices.has("p-new")).toBe(true);
      expect(gw.registry.devices.has("p1")).toBe(false);
      expect(fresh.closedByServer).toBe(false);

      const addr = gw.metricsAddress;
      const text = await (await fetch(`http://${addr?.host}:${addr?.port}/metrics`)).text();
      expect(metricValue(text, 'linli_config_reloads_total{result="applied"}')).toBe(1);
      expect(metricValue(text, 'linli_config_reloads_total{result="refused"}')).toBe(1);
    } finally {
      for (const p of load) await p.stop();
      for (const c of clients) await c.end().catch(() => undefined);
      await gw.stop();
    }
  }, 60_000);
});

async function waitUntil(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await sleep(10);
  }
}
