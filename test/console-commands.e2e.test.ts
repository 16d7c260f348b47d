/**
 * Device commands from the operators' console against a real gateway on 127.0.0.1: the page's own
 * way in, a login on /api/site (HTTP Basic) and MQTT over the console's /mqtt WebSocket, to a GD-2
 * emulator (sim/mqtt/gd2.ts). The console offers the commands the device's profile declares, to a
 * role that may send them; the request takes the MQTT path every console's does (docs/topics.md
 * "Device commands"), so the gateway checks the role itself and attributes the result to the account.
 */
import { request } from "node:http";
import mqtt from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import type { Gateway } from "../gateway/gateway.js";
import { Gd2 } from "../sim/mqtt/gd2.js";
import { OPS, SITE, sleep, startGateway, TestClient, testConfig } from "./support/harness.js";

/** The duty desk: answers alerts, may not command devices (docs/security.md "Operator roles"). */
const DESK = { name: "desk", password: "desk-pw" };

let gw: Gateway | null = null;
const clients: TestClient[] = [];
const detectors: Gd2[] = [];

afterEach(async () => {
  await Promise.all(detectors.splice(0).map((d) => d.stop()));
  for (const c of clients.splice(0)) await c.end().catch(() => undefined);
  await gw?.stop();
  gw = null;
});

async function start(): Promise<Gateway> {
  const base = testConfig();
  gw = await startGateway({
    config: {
      ...base,
      operators: [OPS, { ...DESK, role: "responder" }],
      devices: [
        ...(base.devices ?? []),
        {
          id: "k-1",
          model: "gd2",
          password: "pw-k1",
          household: "hh-1",
          name: "燃气报警器",
          location: "厨房",
        },
      ],
      console: { enabled: true, host: "127.0.0.1", port: 0 },
      storage: { enabled: false },
    },
  });
  return gw;
}

interface SiteDevice {
  id: string;
  commands?: Array<{ name: string; confirm: boolean; value: unknown; names: unknown }>;
}
interface Site {
  operator: { name: string; role: string; actions: string[] };
  devices: SiteDevice[];
}

/** The console's login: GET /api/site with the operator's password, as the page does. */
function siteAs(g: Gateway, who: { name: string; password: string }): Promise<Site> {
  const url = new URL("/api/site", g.consoleUrl as string);
  const authorization = `Basic ${Buffer.from(`${who.name}:${who.password}`).toString("base64")}`;
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { authorization }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        res.statusCode === 200
          ? resolve(JSON.parse(Buffer.concat(chunks).toString()) as Site)
          : reject(new Error(`/api/site: ${res.statusCode}`)),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

/** The page's live link: MQTT over the console's WebSocket, with the operator's own login. */
async function consoleLink(g: Gateway, who: { name: string; password: string }): Promise<TestClient> {
  const port = new URL(g.consoleUrl as string).port;
  const client = new TestClient(
    await mqtt.connectAsync(`ws://127.0.0.1:${port}/mqtt`, {
      username: who.name,
      password: who.password,
      clientId: `${who.name}-console-${Math.random().toString(36).slice(2, 8)}`,
      reconnectPeriod: 0,
      connectTimeout: 3000,
    }),
  );
  clients.push(client);
  await client.subscribe(`linli/${SITE}/cmd/+/+/result`);
  return client;
}

async function detector(g: Gateway): Promise<Gd2> {
  const d = new Gd2({
    deviceId: "k-1",
    brokerUrl: `mqtt://127.0.0.1:${g.mqttPort}`,
    password: "pw-k1",
    heartbeatIntervalMs: 0,
    valveTravelMs: 200,
    autoClose: false,
  });
  detectors.push(d);
  await d.start();
  return d;
}

const commandsOf = (site: Site, id: string) => site.devices.find((d) => d.id === id)?.commands;

describe("device commands from the console", () => {
  it("offers the GD-2's own commands, valves confirmed; a close from the console reaches the valve, attributed, with its reply", async () => {
    const g = await start();
    const site = await siteAs(g, OPS);
    expect(site.operator.actions).toContain("cmd");
    // Exactly what the profile declares, in its order: the valve's two ask first.
    expect(commandsOf(site, "k-1")).toEqual([
      {
        name: "valve_close",
        names: { "zh-CN": "关闭燃气阀", en: "close the gas valve" },
        confirm: true,
        value: null,
      },
      {
        name: "valve_open",
        names: { "zh-CN": "打开燃气阀", en: "open the gas valve" },
        confirm: true,
        value: null,
      },
      { name: "self_test", names: { "zh-CN": "自检", en: "self-test" }, confirm: false, value: null },
    ]);
    expect(commandsOf(site, "p-1")?.map((c) => c.name)).toEqual(["locate"]);
    expect(commandsOf(site, "d-1")).toEqual([]);

    const d = await detector(g);
    await d.setLel(18.5);
    const link = await consoleLink(g, OPS);
    await link.publish(`linli/${SITE}/cmd/k-1/valve_close`, JSON.stringify({ id: "c-1", by: "王丽" }));
    await link.waitFor((m) => m.topic.endsWith("/cmd/k-1/valve_close/result") && m.json().reply === "ok");
    const results = link.on("/cmd/k-1/valve_close/result").map((m) => m.json());
    expect(results).toEqual([
      expect.objectContaining({ id: "c-1", by: "王丽", account: OPS.name, ok: true, sent: true }),
      expect.objectContaining({ id: "c-1", ok: true, reply: "ok" }),
    ]);
    expect(d.commandsReceived).toEqual([{ cmd: "valve_close", id: "c-1" }]);
    for (let i = 0; i < 50 && d.valve !== "closed"; i++) await sleep(50);
    expect(d.valve).toBe("closed");
    expect(g.counters.rejected("operator", "cmd-forbidden")).toBe(0);

    // The detector away: queued, said so, then delivered at its next login (a second result).
    await d.stop();
    await sleep(200);
    await link.publish(`linli/${SITE}/cmd/k-1/self_test`, JSON.stringify({ id: "c-2" }));
    const queued = (await link.waitFor((m) => m.topic.endsWith("/cmd/k-1/self_test/result"))).json();
    expect(queued).toMatchObject({ id: "c-2", account: OPS.name, ok: true, sent: false, queued: true });
    expect(typeof queued.expiresAt).toBe("number");
    await detector(g);
    const delivered = await link.waitFor(
      (m) => m.topic.endsWith("/cmd/k-1/self_test/result") && m.json().sent === true,
      5000,
    );
    expect(delivered.json()).toMatchObject({ id: "c-2", account: OPS.name, ok: true });
    expect(typeof delivered.json().waitedMs).toBe("number");
  }, 30_000);

  it("a responder is offered no command, and one sent anyway over the console's link is refused, counted, never sent", async () => {
    const g = await start();
    const desk = await siteAs(g, DESK);
    expect(desk.operator).toMatchObject({ role: "responder" });
    expect(desk.operator.actions).not.toContain("cmd");
    expect(desk.devices.every((dev) => dev.commands === undefined)).toBe(true);
    // The supervisor's view of the same site has them: the role, not the site, took them away.
    expect(commandsOf(await siteAs(g, OPS), "k-1")?.length).toBe(3);

    const d = await detector(g);
    const link = await consoleLink(g, DESK);
    await link.publish(`linli/${SITE}/cmd/k-1/valve_open`, JSON.stringify({ id: "x-1" }));
    const refused = (await link.waitFor((m) => m.topic.endsWith("/cmd/k-1/valve_open/result"))).json();
    expect(refused).toMatchObject({ id: "x-1", account: DESK.name, ok: false, error: "forbidden" });
    expect(refused.message).toBe("无权限：值班员不能向设备发送命令（需要主管）");
    expect(g.counters.rejected("operator", "cmd-forbidden")).toBe(1);
    await sleep(300);
    expect(d.commandsReceived).toEqual([]);
  }, 30_000);
});
