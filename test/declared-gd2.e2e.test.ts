/**
 * The GD-2 gas detector described as data (examples/profiles/gd2.yaml) against a real gateway, fed
 * the datasheet's messages as a device would publish them: one GAS_LEAK per incident naming each
 * cause, cleared under 5 %LEL with the detector's level none; GAS_VALVE_NOT_CLOSED 20 s into a leak
 * whose valve is not closed (an `all:` alarm); FAULT P2 naming each fault; a command
 * carrying the request's id and the detector's reply as its result; what the
 * datasheet calls invalid (a heartbeat without its `fault` too) refused and counted while the
 * gateway keeps running.
 */
import { readFileSync } from "node:fs";
import { encode } from "cbor-x";
import { afterEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { FakeClock } from "../core/clock.js";
import type { Gateway } from "../gateway/gateway.js";
import { connect, OPS, SITE, sleep, startGateway, type TestClient, testConfig } from "./support/harness.js";

describe("the GD-2 as a YAML profile, end to end", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** A gateway running examples/profiles/gd2.yaml with one detector, gas-1, and an operator watching its alerts. */
  async function gd2Site(clock?: FakeClock, settings?: Record<string, number>) {
    const profile = parse(readFileSync("examples/profiles/gd2.yaml", "utf8"));
    const gw: Gateway = await startGateway({
      ...(clock ? { clock } : {}),
      config: testConfig({
        deviceProfiles: [profile],
        devices: [
          {
            id: "gas-1",
            model: "gd2-yaml",
            password: "pw-gas-1",
            ...(settings ? { settings } : {}),
          } as never,
        ],
        storage: { enabled: false },
      }),
    });
    cleanups.push(() => gw.stop());
    const ops: TestClient = await connect(gw, OPS.name, OPS.password);
    cleanups.push(() => ops.end());
    await ops.subscribe(`linli/${SITE}/alerts/#`);
    const dev: TestClient = await connect(gw, "gas-1", "pw-gas-1");
    cleanups.push(() => dev.end());
    let seq = 0;
    const up = (m: Record<string, unknown>) =>
      dev.publish("devices/gd2/gas-1/up", JSON.stringify({ seq: ++seq, ts: 1763798400000, ...m }));
    return { gw, ops, dev, up, nextSeq: () => ++seq };
  }

  it("the datasheet's expected alerts, and its invalid messages refused and counted", async () => {
    const { gw, ops, dev, up, nextSeq } = await gd2Site();
    const alert = (code: string, priority: number, test: (a: Record<string, unknown>) => boolean) =>
      ops.waitFor((m) => {
        if (m.topic !== `linli/${SITE}/alerts/p${priority}/${code}/gas-1` || m.payload.length === 0)
          return false;
        return test(m.json() as Record<string, unknown>);
      });

    await up({ t: "hb", lel: 0.0, valve: "open", mains: true, fault: 0 });
    // The datasheet's example alarm.
    await up({ t: "alarm", lel: 18.5, level: "low", valve: "closed" });
    const leak = await alert("GAS_LEAK", 1, (a) => a.state === "active-unacknowledged");
    expect(leak.json()).toMatchObject({
      priority: 1,
      model: "gd2-yaml",
      causes: ["detector alarm low", "lel at or over the leakThreshold"],
    });
    const id = (leak.json() as { id: string }).id;
    // The detector's level none, the gas at 5 %LEL: not yet clear; one alert, no second.
    await up({ t: "alarm", lel: 5.0, level: "none", valve: "closed" });
    await up({ t: "hb", lel: 4.9, valve: "closed", mains: true, fault: 0 });
    const cleared = await alert("GAS_LEAK", 1, (a) => a.clearedAt !== null);
    expect((cleared.json() as { id: string }).id).toBe(id);

    // A valve motor fault in the heartbeat, the valve reporting fault: one FAULT P2 naming both.
    await up({ t: "hb", lel: 0.0, valve: "fault", mains: true, fault: 3 });
    const fault = await alert("FAULT", 2, (a) => a.state === "active-unacknowledged");
    expect((fault.json() as { causes: string[] }).causes).toEqual(["valve fault", "valve motor fault"]);

    // An operator's valve_close reaches the detector with the request's id; its reply comes back as
    // the command's second result.
    await ops.subscribe(`linli/${SITE}/cmd/gas-1/valve_close/result`);
    await dev.subscribe("devices/gd2/gas-1/down");
    await ops.publish(`linli/${SITE}/cmd/gas-1/valve_close`, JSON.stringify({ id: "c-17" }));
    const down = await dev.waitFor((m) => m.topic === "devices/gd2/gas-1/down");
    expect(down.json()).toEqual({ cmd: "valve_close", id: "c-17" });
    await up({ t: "reply", id: "c-17", cmd: "valve_close", result: "busy" });
    const answer = await ops.waitFor(
      (m) => m.topic.endsWith("/valve_close/result") && (m.json() as { reply?: string }).reply !== undefined,
    );
    expect(answer.json()).toMatchObject({ id: "c-17", command: "valve_close", reply: "busy", ok: false });

    // JSON only, 384 bytes, lel 0.0-100.0, fault 0-4: refused and counted, the gateway carries on.
    await dev.publish("devices/gd2/gas-1/up", Buffer.from(encode({ t: "hb", seq: nextSeq(), ts: 0 })));
    await up({ t: "hb", lel: 0.0, valve: "open", mains: true, fault: 0, pad: "x".repeat(400) });
    await up({ t: "hb", lel: 100.1, valve: "open", mains: true, fault: 0 });
    await up({ t: "hb", lel: 0.0, valve: "open", mains: true, fault: 5 });
    await up({ t: "hb", lel: "0", valve: "open", mains: true, fault: 0 });
    // A heartbeat without its `fault`, a kind the datasheet does not list (mqtt.kinds).
    await up({ t: "hb", lel: 0.0, valve: "open", mains: true });
    await up({ t: "status", lel: 0.0 });
    // The sensor back and the valve closed: the FAULT clears.
    await up({ t: "hb", lel: 0.0, valve: "closed", mains: true, fault: 0 });
    await alert("FAULT", 2, (a) => a.clearedAt !== null);
    expect(gw.counters.rejected("gd2-yaml", "unknown-encoding")).toBe(1);
    expect(gw.counters.rejected("gd2-yaml", "oversized")).toBe(1);
    expect(gw.counters.rejected("gd2-yaml", "out-of-range")).toBe(2);
    expect(gw.counters.rejected("gd2-yaml", "bad-field")).toBe(3);
  });
  it("a leak the detector's level alone raised at 7 %LEL holds when the level returns to none, until lel is under 5 (as gd2.ts)", async () => {
    const { ops, up } = await gd2Site();
    const topic = `linli/${SITE}/alerts/p1/GAS_LEAK/gas-1`;
    const leaks = () =>
      ops
        .on(topic)
        .filter((m) => m.payload.length > 0)
        .map((m) => m.json() as Record<string, unknown>);
    await up({ t: "hb", lel: 0.0, valve: "closed", mains: true, fault: 0 });
    await up({ t: "alarm", lel: 7.0, level: "low", valve: "closed" });
    const raised = await ops.waitFor((m) => m.topic === topic && m.payload.length > 0);
    expect(raised.json()).toMatchObject({ causes: ["detector alarm low"] });
    await up({ t: "alarm", lel: 7.0, level: "none", valve: "closed" });
    await up({ t: "hb", lel: 6.0, valve: "closed", mains: true, fault: 0 });
    const held = await ops.waitFor(
      (m) => m.topic === topic && (m.json() as { causes: string[] }).causes[0] === "not yet under 5 %LEL",
    );
    expect(held.json()).toMatchObject({ clearedAt: null });
    // Not cleared meanwhile (before, the level's none cleared it at 7 %LEL).
    expect(leaks().every((a) => a.clearedAt === null)).toBe(true);
    await up({ t: "hb", lel: 4.9, valve: "closed", mains: true, fault: 0 });
    const cleared = await ops.waitFor(
      (m) =>
        m.topic === topic && m.payload.length > 0 && (m.json() as { clearedAt: unknown }).clearedAt !== null,
    );
    expect((cleared.json() as { id: string }).id).toBe((raised.json() as { id: string }).id);
  });

  it("GAS_VALVE_NOT_CLOSED: a leak whose valve is not closed 20 s after the leak began; a closed valve clears it", async () => {
    const clock = new FakeClock(Date.now());
    const { ops, up } = await gd2Site(clock);
    const topic = `linli/${SITE}/alerts/p1/GAS_VALVE_NOT_CLOSED/gas-1`;
    const notClosed = () => ops.on(topic).filter((m) => m.payload.length > 0);

    await up({ t: "hb", lel: 0.0, valve: "open", mains: true, fault: 0 });
    await up({ t: "alarm", lel: 12.0, level: "low", valve: "open" });
    await ops.waitFor((m) => m.topic === `linli/${SITE}/alerts/p1/GAS_LEAK/gas-1` && m.payload.length > 0);
    // The detector starts closing it and jams: still not closed.
    await up({ t: "valve", valve: "moving", cause: "local" });
    clock.advance(19_000);
    await sleep(50);
    expect(notClosed()).toEqual([]);
    // The timer wheel ticks each second: due at 20 s, fired by 21 s.
    clock.advance(2_000);
    const raised = await ops.waitFor((m) => m.topic === topic && m.payload.length > 0);
    expect(raised.json()).toMatchObject({
      priority: 1,
      state: "active-unacknowledged",
      causes: ["valve not closed 20 s into the leak: moving"],
    });
    // The valve reports closed: it clears, the leak stands.
    await up({ t: "valve", valve: "closed", cause: "remote" });
    const cleared = await ops.waitFor(
      (m) =>
        m.topic === topic && m.payload.length > 0 && (m.json() as { clearedAt: unknown }).clearedAt !== null,
    );
    expect((cleared.json() as { id: string }).id).toBe((raised.json() as { id: string }).id);
  });

  it("autoShutOff 1: the gateway sends valve_close itself, once per incident; the alert names the peak and says sent", async () => {
    const { ops, dev, up } = await gd2Site(undefined, { autoShutOff: 1 });
    const topic = `linli/${SITE}/alerts/p1/GAS_LEAK/gas-1`;
    await dev.subscribe("devices/gd2/gas-1/down");
    await up({ t: "hb", lel: 0.0, valve: "open", mains: true, fault: 0 });
    await up({ t: "alarm", lel: 18.5, level: "low", valve: "open" });
    const down = await dev.waitFor((m) => m.topic === "devices/gd2/gas-1/down");
    expect(down.json()).toMatchObject({ cmd: "valve_close" });
    const leak = await ops.waitFor(
      (m) => m.topic === topic && m.payload.length > 0 && (m.json() as { state: string }).state !== undefined,
    );
    expect(leak.json()).toMatchObject({
      detail: { peakLel: 18.5, autoShutOff: true, autoShutOffQueued: false },
    });
    expect((leak.json() as { message: string }).message).toContain("最高 18.5 %LEL，网关已发送关阀命令");
    // Higher gas in the same incident: the peak follows, no second command.
    await up({ t: "alarm", lel: 25.0, level: "high", valve: "moving" });
    await ops.waitFor(
      (m) => m.topic === topic && (m.json() as { detail?: { peakLel?: number } }).detail?.peakLel === 25,
    );
    await sleep(100);
    expect(dev.on("devices/gd2/gas-1/down")).toHaveLength(1);
  });
});
