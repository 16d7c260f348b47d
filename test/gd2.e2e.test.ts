/**
 * The GD-2 gas detector end to end: the emulator (sim/mqtt/gd2.ts, written
 * from the datasheet alone) against a real gateway on 127.0.0.1.
 */
import { afterEach, describe, expect, it } from "vitest";
import { FakeClock } from "../core/clock.js";
import type { Gateway } from "../gateway/gateway.js";
import { Gd2 } from "../sim/mqtt/gd2.js";
import {
  connect,
  OPS,
  type Received,
  SITE,
  sleep,
  startGateway,
  type TestClient,
  testConfig,
} from "./support/harness.js";

let gw: Gateway | null = null;
let ops: TestClient | null = null;
const detectors: Gd2[] = [];

afterEach(async () => {
  await Promise.all(detectors.splice(0).map((d) => d.stop()));
  await ops?.end();
  ops = null;
  await gw?.stop();
  gw = null;
});

async function site(
  gd2: Record<string, unknown>,
  clock?: FakeClock,
): Promise<{ gw: Gateway; ops: TestClient }> {
  const base = testConfig();
  gw = await startGateway({
    clock,
    config: {
      ...base,
      devices: [
        ...(base.devices ?? []),
        { id: "k-1", model: "gd2", password: "pw-k1", household: "hh-1", ...gd2 },
      ],
      storage: { enabled: false },
    },
  });
  ops = await connect(gw, OPS.name, OPS.password);
  await ops.subscribe(`linli/${SITE}/#`);
  return { gw, ops };
}

async function detector(g: Gateway, opts: Partial<ConstructorParameters<typeof Gd2>[0]> = {}): Promise<Gd2> {
  const d = new Gd2({
    deviceId: "k-1",
    brokerUrl: `mqtt://127.0.0.1:${g.mqttPort}`,
    password: "pw-k1",
    heartbeatIntervalMs: 0,
    valveTravelMs: 200,
    autoClose: false,
    ...opts,
  });
  detectors.push(d);
  await d.start();
  return d;
}

const alertOf = (code: string, state?: string) => (m: Received) =>
  m.topic === `linli/${SITE}/alerts/p1/${code}/k-1` &&
  m.payload.length > 0 &&
  (state === undefined || m.json().state === state);

describe("GD-2 against a real gateway", () => {
  it("a command to a detector with no connection says so: queued, not delivered, not to be taken as done", async () => {
    const { gw: g, ops: o } = await site({ name: "燃气报警器", location: "厨房" });
    const d = await detector(g);
    await d.stop();
    await sleep(200);
    await o.publish(`linli/${SITE}/cmd/k-1/valve_close`, JSON.stringify({ id: "r-9", by: "Wang Li" }));
    const result = (await o.waitFor((m) => m.topic.endsWith("/cmd/k-1/valve_close/result"))).json();
    // It waits for the detector's next login (0.13.43, test/pending-downlinks.e2e.test.ts).
    expect(result).toMatchObject({ id: "r-9", ok: true, sent: false, queued: true, deviceConnected: false });
    expect(result.message).toBe(
      "住户 hh-1 的燃气报警器（厨房）：设备当前未连接，命令“关闭燃气阀”尚未送达，将在设备重新连接后发送：不要当作已执行",
    );
  });

  it("a gas leak is a P1 GAS_LEAK; an operator's valve_close reaches the detector, its reply and the valve come back", async () => {
    const { gw: g, ops: o } = await site({});
    const d = await detector(g);
    await d.setLel(18.5);
    const raised = (await o.waitFor(alertOf("GAS_LEAK", "active-unacknowledged"))).json();
    expect(raised).toMatchObject({
      code: "GAS_LEAK",
      priority: 1,
      model: "gd2",
      household: "hh-1",
      detail: { level: "low", peakLel: 18.5, valve: "open" },
    });

    await o.publish(`linli/${SITE}/cmd/k-1/valve_close`, JSON.stringify({ id: "r-1", by: "Wang Li" }));
    const results = () => o.on(`/cmd/k-1/valve_close/result`).map((m) => m.json());
    await o.waitFor((m) => m.topic.endsWith("/valve_close/result") && m.json().reply === "ok");
    expect(results()).toEqual([
      expect.objectContaining({ id: "r-1", by: "Wang Li", ok: true, sent: true }),
      expect.objectContaining({ id: "r-1", command: "valve_close", ok: true, reply: "ok" }),
    ]);
    // Connected: nothing to warn about.
    expect(results()[0]).not.toHaveProperty("deviceConnected");
    expect(results()[0]).not.toHaveProperty("message");
    expect(d.commandsReceived).toEqual([{ cmd: "valve_close", id: "r-1" }]);
    // The valve has moved: its message updates the open alert's detail.
    await o.waitFor(
      (m) => alertOf("GAS_LEAK")(m) && (m.json().detail as Record<string, unknown>).valve === "closed",
    );

    // Opening is refused by the detector while there is gas: the reply says busy.
    await o.publish(`linli/${SITE}/cmd/k-1/valve_open`, "{}");
    const busy = (
      await o.waitFor((m) => m.topic.endsWith("/valve_open/result") && m.json().reply !== undefined)
    ).json();
    expect(busy).toMatchObject({ command: "valve_open", ok: false, reply: "busy", error: "device-busy" });
    // What an operator without the console reads: the device and what failed, in the site's language.
    expect(busy.message).toBe("住户 hh-1 的燃气报警器 k-1：命令“打开燃气阀”失败，设备忙，拒绝执行");
    expect(typeof busy.id).toBe("string");

    await d.setLel(0);
    await o.waitFor(alertOf("GAS_LEAK", "cleared-unacknowledged"));
    expect(o.on("GAS_VALVE_NOT_CLOSED")).toEqual([]);
  });

  it("a reply naming none of the model's commands is not published: a device puts no topic levels or wildcards into results", async () => {
    const { gw: g, ops: o } = await site({});
    const k = await connect(g, "k-1", "pw-k1");
    try {
      const reply = (seq: number, cmd: string) =>
        k.publish(
          "devices/gd2/k-1/up",
          JSON.stringify({ t: "reply", seq, ts: Date.now(), id: `r-${seq}`, cmd, result: "ok" }),
        );
      await reply(1, "valve_close/result/x");
      await reply(2, "valve+open#");
      await reply(3, "not_a_command");
      await reply(4, "self_test");
      await o.waitFor((m) => m.topic === `linli/${SITE}/cmd/k-1/self_test/result`);
      await sleep(100);
      expect(o.on(`/cmd/k-1/`).map((m) => m.topic)).toEqual([`linli/${SITE}/cmd/k-1/self_test/result`]);
      expect(g.counters.rejected("gd2", "reply-unknown-command")).toBe(3);
    } finally {
      await k.end();
    }
  });

  it("automatic shut-off: the gateway closes the valve itself and says so; a jammed valve is GAS_VALVE_NOT_CLOSED after 20 s", async () => {
    const clock = new FakeClock(Date.now());
    const { gw: g, ops: o } = await site({ autoShutOff: true }, clock);
    // The detector starts closing on its own alarm, and jams.
    const d = await detector(g, { autoClose: true });
    d.jamValve();
    await d.setLel(30);
    const raised = (await o.waitFor(alertOf("GAS_LEAK"))).json();
    expect(raised.causes).toContain("valve_close sent by the gateway");
    expect(raised.detail).toMatchObject({ level: "high", autoShutOff: true });
    await waitUntil(() => d.commandsReceived.length === 1);
    expect(d.commandsReceived[0]?.cmd).toBe("valve_close");
    // The gateway's own command is answered like an operator's (the jammed valve still says ok).
    await o.waitFor((m) => m.topic.endsWith("/cmd/k-1/valve_close/result") && m.json().reply === "ok");

    clock.advance(19_000);
    await sleep(50);
    expect(o.on("GAS_VALVE_NOT_CLOSED")).toEqual([]);
    // The timer wheel ticks each second: due at 20 s, fired by 21 s.
    clock.advance(2_000);
    const stuck = (await o.waitFor(alertOf("GAS_VALVE_NOT_CLOSED"))).json();
    expect(stuck).toMatchObject({ priority: 1, detail: { valve: "moving", autoShutOff: true } });
  });

  it("a sensor at end of life is FAULT P2; a self-test is answered", async () => {
    const { gw: g, ops: o } = await site({});
    const d = await detector(g);
    d.setFault(1);
    await o.publish(`linli/${SITE}/cmd/k-1/self_test`, JSON.stringify({ id: "t-9" }));
    await o.waitFor((m) => m.topic.endsWith("/self_test/result") && m.json().reply === "fault");
    const fault = (
      await o.waitFor((m) => m.topic === `linli/${SITE}/alerts/p2/FAULT/k-1` && m.payload.length > 0)
    ).json();
    expect(fault.causes).toEqual(["sensor end of life", "cannot detect gas"]);
  });
});

async function waitUntil(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await sleep(5);
  }
}
