/**
 * What operators read, through a real gateway and a real MQTT subscriber: an
 * alert's published JSON names the household and resident, says what
 * happened in zh-CN and carries the site's local time; the escalation too.
 * The resident's phone is in the alert and nowhere in the gateway's log: the
 * log (level trace, JSON and pretty) is captured through a whole raise,
 * escalate, acknowledge, reload flow and searched.
 */
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { FakeClock } from "../core/clock.js";
import { validateConfig } from "../gateway/config/load.js";
import type { ConfigInput } from "../gateway/config/schema.js";
import { Gateway } from "../gateway/gateway.js";
import { createLogger } from "../gateway/log.js";
import { connect, OPS, pendantMsg, SITE, sleep, type TestClient, testConfig } from "./support/harness.js";

const PHONE = "+86 138 0013 8000";
// 2026-12-02 22:15:00 in Shanghai.
const START = Date.UTC(2026, 11, 2, 14, 15, 0);

function siteConfig(phone = PHONE): ConfigInput {
  return testConfig({
    site: { id: SITE, timezone: "Asia/Shanghai", locale: "zh-CN" },
    households: [
      {
        id: "hh-1",
        name: "1号楼 101室",
        address: "和平路 88 号 幸福小区",
        room: "101室",
        residentName: "张阿姨",
        contactPhone: phone,
      },
      { id: "hh-2" },
    ],
    devices: [
      {
        id: "p-1",
        model: "ec200",
        password: "pw-p1",
        household: "hh-1",
        name: "紧急呼叫器",
        location: "卧室床头",
      },
      { id: "p-2", model: "ec200", password: "pw-p2", household: "hh-2" },
    ],
    storage: { enabled: false },
  });
}

describe("alert content over real MQTT", () => {
  let gw: Gateway | null = null;
  const clients: TestClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.end()));
    await gw?.stop();
    gw = null;
  });

  for (const format of ["json", "pretty"] as const)
    it(`household, zh-CN message and local time in the alert; the phone never in the ${format} log`, async () => {
      const lines: string[] = [];
      const destination = new Writable({
        write(chunk, _enc, cb) {
          lines.push(String(chunk));
          cb();
        },
      });
      const clock = new FakeClock(START);
      gw = await Gateway.start({
        config: validateConfig(siteConfig(), "test"),
        clock,
        logger: createLogger({ level: "trace", format, destination }),
      });
      const ops = await connect(gw, OPS.name, OPS.password);
      clients.push(ops);
      await ops.subscribe(`linli/${SITE}/#`);
      const pendant = await connect(gw, "p-1", "pw-p1");
      clients.push(pendant);

      // Raise.
      await pendant.publish("devices/ec200/p-1/up", pendantMsg(1, "press"));
      const raised = await ops.waitFor((m) => m.topic === `linli/${SITE}/alerts/p1/EMERGENCY_CALL/p-1`);
      const alert = raised.json();
      expect(alert).toMatchObject({
        code: "EMERGENCY_CALL",
        household: "hh-1",
        householdName: "1号楼 101室",
        address: "和平路 88 号 幸福小区",
        room: "101室",
        residentName: "张阿姨",
        contactPhone: PHONE,
        deviceName: "紧急呼叫器",
        location: "卧室床头",
        message: "紧急呼叫：1号楼 101室 张阿姨，紧急呼叫器（卧室床头）",
        locale: "zh-CN",
        raisedAt: START,
        raisedAtLocal: "2026-12-02T22:15:00.000+08:00",
        ackedAtLocal: null,
        transition: "raised",
      });
      expect(alert.action).toMatch(/^立即致电住户/);
      expect(new Date(alert.raisedAtLocal as string).getTime()).toBe(alert.raisedAt);

      // Telemetry names the device.
      const tele = await ops.waitFor((m) => m.topic === `linli/${SITE}/telemetry/ec200/p-1`);
      expect(tele.json()).toMatchObject({ deviceId: "p-1", deviceName: "紧急呼叫器" });

      // Escalate: a minute without an ack.
      clock.advance(61_000);
      const esc = await ops.waitFor((m) => m.topic === `linli/${SITE}/escalations/p1/EMERGENCY_CALL/p-1`);
      expect(esc.json()).toMatchObject({
        householdName: "1号楼 101室",
        residentName: "张阿姨",
        contactPhone: PHONE,
        escalation: { level: 1 },
        raisedAtLocal: "2026-12-02T22:15:00.000+08:00",
      });
      expect(esc.json().message).toMatch(
        /^紧急呼叫：1号楼 101室 张阿姨，紧急呼叫器（卧室床头）；1 分钟无人确认，第 1 次升级$/,
      );

      // Acknowledge.
      await ops.publish(`linli/${SITE}/ack/${alert.id}`, JSON.stringify({ by: "duty-desk", note: "已致电" }));
      const closed = await ops.waitFor(
        (m) =>
          m.topic.endsWith("/EMERGENCY_CALL/p-1") && m.payload.length > 0 && m.json().transition === "closed",
      );
      expect(closed.json()).toMatchObject({
        ackedBy: "duty-desk",
        ackedAtLocal: "2026-12-02T22:16:01.000+08:00",
        message: "紧急呼叫：1号楼 101室 张阿姨，紧急呼叫器（卧室床头）；已结束",
      });

      // A reload that changes the phone, and one refused for a bad phone: still nothing in the log.
      const NEW_PHONE = "021-6234 5678";
      expect((await gw.reload(validateConfig(siteConfig(NEW_PHONE), "test"))).result).toBe("applied");
      const refused = await gw.reload(() => validateConfig(siteConfig("call 139 0000 1111"), "site.yaml"));
      expect(refused.result).toBe("refused");
      await pendant.publish("devices/ec200/p-1/up", pendantMsg(2, "press"));
      const again = await ops.waitFor(
        (m) => m.topic.endsWith("/EMERGENCY_CALL/p-1") && m.payload.length > 0 && m.json().id !== alert.id,
      );
      expect(again.json().contactPhone).toBe(NEW_PHONE);

      await gw.stop();
      gw = null;
      await sleep(20);
      const log = lines.join("");
      // The log was written (so searching it means something), and it saw the whole flow.
      for (const what of [
        "alert raised",
        "alert escalated",
        "alert closed",
        "configuration reloaded",
        "gateway stopped",
      ])
        expect(log).toContain(what);
      for (const p of [PHONE, NEW_PHONE, "139 0000 1111"]) {
        expect(log).not.toContain(p);
        // Also not with its spacing changed.
        expect(log.replace(/[\s-]/g, "")).not.toContain(p.replace(/[\s-]/g, ""));
      }
    });
});
