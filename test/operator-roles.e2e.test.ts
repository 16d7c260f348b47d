/**
 * Operators' roles end to end (docs/security.md "Operator roles"), on loopback with the real
 * embedded broker: a viewer's acknowledgement is refused (`forbidden`, in Chinese, on its
 * ops/result; the alert stays unacknowledged; the connection stays; nothing is forwarded), a
 * responder's is taken, a responder's device command is refused on the command's result topic
 * and never reaches the device, a supervisor's does; a reload that changes a role applies to the
 * next request of a connected account.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../gateway/config/load.js";
import type { ConfigInput } from "../gateway/config/schema.js";
import type { Gateway } from "../gateway/gateway.js";
import {
  connect,
  metricsGet,
  pendantMsg,
  SITE,
  sleep,
  startGateway,
  type TestClient,
  testConfig,
} from "./support/harness.js";

const VIEWER = { name: "screen", password: "screen-pw", role: "viewer" } as const;
const RESPONDER = { name: "desk", password: "desk-pw", role: "responder" } as const;
const SUPERVISOR = { name: "boss", password: "boss-pw", role: "supervisor" } as const;

const config = (responderRole: "responder" | "viewer" = "responder"): ConfigInput => {
  const base = testConfig();
  return testConfig({
    operators: [VIEWER, { ...RESPONDER, role: responderRole }, SUPERVISOR],
    devices: [
      ...(base.devices ?? []),
      { id: "gas-1", model: "gd2", password: "pw-gas", household: "hh-2" } as never,
    ],
  });
};

describe("operator roles, enforced by the gateway", () => {
  let gw: Gateway;
  const clients: TestClient[] = [];
  let viewer: TestClient;
  let responder: TestClient;
  let supervisor: TestClient;
  let gas: TestClient;

  beforeAll(async () => {
    gw = await startGateway({ config: config() });
    viewer = await connect(gw, VIEWER.name, VIEWER.password);
    responder = await connect(gw, RESPONDER.name, RESPONDER.password);
    supervisor = await connect(gw, SUPERVISOR.name, SUPERVISOR.password);
    gas = await connect(gw, "gas-1", "pw-gas");
    clients.push(viewer, responder, supervisor, gas);
    for (const c of [viewer, responder, supervisor]) expect(await c.subscribe(`linli/${SITE}/#`)).toBe(1);
    expect(await gas.subscribe("devices/gd2/gas-1/down")).toBe(1);
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.end()));
    await gw?.stop();
  });

  const opsResult = (c: TestClient, account: string, target: string) =>
    c.waitFor((m) => m.topic === `linli/${SITE}/ops/result/${account}` && m.json().target === target);

  it("a viewer's ack is refused forbidden and changes nothing; a responder's is taken", async () => {
    const p = await connect(gw, "p-1", "pw-p1");
    clients.push(p);
    await p.publish("devices/ec200/p-1/up", pendantMsg(1, "press"));
    const raised = (await viewer.waitFor((m) => m.topic.includes("/alerts/p1/EMERGENCY_CALL/p-1"))).json();
    const id = raised.id as string;

    // Acknowledged at the MQTT level (the publish resolves: the PUBACK came) and answered.
    await viewer.publish(`linli/${SITE}/ack/${id}`, JSON.stringify({ ref: "v-1" }));
    expect((await opsResult(viewer, VIEWER.name, id)).json()).toMatchObject({
      action: "ack",
      ok: false,
      reason: "forbidden",
      message: "无权限：查看员不能确认告警（需要值班员）",
      ref: "v-1",
      account: VIEWER.name,
    });
    expect(gw.engine.byAlertId(id)?.ackedBy).toBeNull();
    expect(gw.counters.rejected("operator", "forbidden")).toBe(1);
    // The connection stays, and the refused request went to nobody (the supervisor sees `linli/<site>/#`).
    expect(viewer.closedByServer).toBe(false);
    expect(await viewer.subscribe(`linli/${SITE}/gateway/status`)).toBe(1);
    expect(supervisor.messages.some((m) => m.topic === `linli/${SITE}/ack/${id}`)).toBe(false);

    // What a viewer may ask (0.13.31): which alerts are open, answered on its own result topic.
    await viewer.publish(`linli/${SITE}/list/p1`, JSON.stringify({ ref: "v-2" }));
    expect((await opsResult(viewer, VIEWER.name, "p1")).json()).toMatchObject({
      action: "list",
      ok: true,
      result: "listed",
      ref: "v-2",
      open: 1,
      alerts: [{ topic: `linli/${SITE}/alerts/p1/EMERGENCY_CALL/p-1`, id, rev: raised.rev }],
      next: null,
    });
    expect(gw.counters.rejected("operator", "forbidden")).toBe(1);

    await responder.publish(`linli/${SITE}/ack/${id}`, JSON.stringify({ by: "Wang Li" }));
    expect((await opsResult(responder, RESPONDER.name, id)).json()).toMatchObject({
      ok: true,
      result: "acknowledged",
      account: RESPONDER.name,
    });
    expect(gw.engine.byAlertId(id)).toMatchObject({ ackedBy: "Wang Li", ackedByAccount: RESPONDER.name });
  });

  it("a responder's valve_open is refused on the command's result and never reaches the detector; a supervisor's does", async () => {
    const result = `linli/${SITE}/cmd/gas-1/valve_open/result`;
    await responder.publish(
      `linli/${SITE}/cmd/gas-1/valve_open`,
      JSON.stringify({ id: "c-1", by: "Wang Li" }),
    );
    expect(
      (await responder.waitFor((m) => m.topic === result && m.json().id === "c-1")).json(),
    ).toMatchObject({
      deviceId: "gas-1",
      command: "valve_open",
      ok: false,
      error: "forbidden",
      message: "无权限：值班员不能向设备发送命令（需要主管）",
      by: "Wang Li",
      account: RESPONDER.name,
    });
    expect(gw.counters.rejected("operator", "cmd-forbidden")).toBe(1);
    // The supervisor's command goes out; the responder's, published before it, did not.
    await supervisor.publish(`linli/${SITE}/cmd/gas-1/valve_open`, JSON.stringify({ id: "c-2" }));
    const down = await gas.waitFor((m) => m.topic === "devices/gd2/gas-1/down");
    expect(down.json()).toMatchObject({ cmd: "valve_open", id: "c-2" });
    expect(gas.messages.filter((m) => m.topic === "devices/gd2/gas-1/down")).toHaveLength(1);
    expect(
      (await supervisor.waitFor((m) => m.topic === result && m.json().id === "c-2")).json(),
    ).toMatchObject({
      ok: true,
      account: SUPERVISOR.name,
    });
  });

  it("a command whose body is JSON null is answered like any other, the gateway unharmed", async () => {
    await supervisor.publish(`linli/${SITE}/cmd/gas-1/self_test`, "null");
    const r = await supervisor.waitFor((m) => m.topic === `linli/${SITE}/cmd/gas-1/self_test/result`);
    expect(r.json()).toMatchObject({ ok: true, by: SUPERVISOR.name });
    expect(supervisor.closedByServer).toBe(false);
  });

  it("refusals are counted in the metrics by reason", async () => {
    const { body } = await metricsGet(gw, "/metrics");
    expect(body).toMatch(/linli_rejections_total\{[^}]*reason="forbidden"[^}]*\} [1-9]/);
    expect(body).toMatch(/linli_rejections_total\{[^}]*reason="cmd-forbidden"[^}]*\} [1-9]/);
  });

  it("a reload that makes the responder a viewer refuses its next request, without disconnecting it", async () => {
    const result = await gw.reload(validateConfig(config("viewer"), "new.yaml"));
    expect(result).toMatchObject({ result: "applied" });
    await responder.publish(`linli/${SITE}/away/hh-1`, JSON.stringify({ away: true, ref: "a-1" }));
    expect((await opsResult(responder, RESPONDER.name, "hh-1")).json()).toMatchObject({
      ok: false,
      reason: "forbidden",
      ref: "a-1",
    });
    await sleep(50);
    expect(responder.closedByServer).toBe(false);
    // Away mode was not set: no monitoring state says so.
    expect(
      supervisor.messages.some(
        (m) => m.topic === `linli/${SITE}/households/hh-1/monitoring` && m.json().state === "away",
      ),
    ).toBe(false);
  });
});
