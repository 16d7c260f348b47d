/**
 * An MQTT JSON device described in YAML (examples/profiles/template-mqtt.yaml,
 * inline in the site config): it logs in like a built-in device, may publish
 * only on its profile's uplink topic, and its messages become telemetry and
 * alerts with the profile's codes and priorities; operator commands become
 * its downlink messages.
 */
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { Gateway } from "../gateway/gateway.js";
import { connect, OPS, SITE, startGateway, type TestClient, testConfig } from "./support/harness.js";

describe("a YAML-described MQTT device end to end", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it("uplink -> telemetry and a P1 alert; a malformed message is refused and counted; command -> downlink", async () => {
    const profile = parse(readFileSync("examples/profiles/template-mqtt.yaml", "utf8"));
    const gw: Gateway = await startGateway({
      config: testConfig({
        deviceProfiles: [profile],
        devices: [{ id: "smoke-1", model: "acme-smoke", password: "pw-s1" } as never],
        storage: { enabled: false },
      }),
    });
    cleanups.push(() => gw.stop());
    const ops: TestClient = await connect(gw, OPS.name, OPS.password);
    cleanups.push(() => ops.end());
    await ops.subscribe(`linli/${SITE}/#`);
    const dev: TestClient = await connect(gw, "smoke-1", "pw-s1");
    cleanups.push(() => dev.end());
    await dev.subscribe("acme/smoke-1/cmd");

    const msg = (seq: number, alarm: boolean, extra: Record<string, unknown> = {}) =>
      JSON.stringify({
        seq,
        ts: Date.now(),
        data: { smoke: alarm ? 3.1 : 0.1, alarm },
        bat: 80,
        state: "ok",
        ...extra,
      });
    await dev.publish("acme/smoke-1/up", msg(1, false));
    const t = await ops.waitFor((m) => m.topic === `linli/${SITE}/telemetry/acme-smoke/smoke-1`);
    expect((t.json() as { metrics: Record<string, unknown> }).metrics.smoke).toEqual({
      value: 0.1,
      unit: "%/m",
    });

    await dev.publish("acme/smoke-1/up", msg(2, true));
    const fire = await ops.waitFor(
      (m) => m.topic === `linli/${SITE}/alerts/p1/FIRE_ALARM/smoke-1` && m.payload.length > 0,
    );
    expect(fire.json()).toMatchObject({
      code: "FIRE_ALARM",
      priority: 1,
      model: "acme-smoke",
      causes: ["smoke detected"],
    });

    await dev.publish("acme/smoke-1/up", msg(3, false, { bat: "full" }));
    await ops.publish(`linli/${SITE}/cmd/smoke-1/silence`, JSON.stringify({ id: "c1" }));
    const down = await dev.waitFor((m) => m.topic === "acme/smoke-1/cmd");
    expect(down.json()).toEqual({ cmd: "silence" });
    expect(gw.counters.rejected("acme-smoke", "bad-field")).toBe(1);
  });
});
