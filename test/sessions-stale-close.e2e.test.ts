/**
 * An alert closed just before a crash, while an operator's console with a persistent session was
 * away. The queued messages of the session are written when they are queued, after the records
 * they stand for: a crash between the close (the alert's record deleted) and the queueing of the
 * closed state kept the alert's last active state in the queue and nothing after it. The console
 * reconnects without subscribing again (no retained state is sent then), so that state was the
 * last word it had: an alert shown open for good that the gateway no longer had. Real gateways on
 * one journal directory, the crash's leftovers made by hand in the journal.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { validateConfig } from "../gateway/config/load.js";
import { Gateway } from "../gateway/gateway.js";
import { Journal } from "../gateway/journal/journal.js";
import { readAlertRecord } from "../gateway/state/alert-record.js";
import { connect, connectListening, OPS, pendantMsg, SITE, sleep, testConfig } from "./support/harness.js";

describe("a persistent session across a crash right after an alert closed", () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  it("the console that was away is told the alert is gone, not left with its last active state", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "linli-sessions-stale-"));
    cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    const config = validateConfig(testConfig(), "test");
    const silent = pino({ level: "silent" });
    const topic = `linli/${SITE}/alerts/p1/EMERGENCY_CALL/p-1`;
    const consoleOpts = {
      username: OPS.name,
      password: OPS.password,
      clientId: `${OPS.name}-console-s`,
      clean: false,
      reconnectPeriod: 0,
    };

    const gw1 = await Gateway.start({ config, logger: silent, dataDir });
    const away = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw1.mqttPort}`, consoleOpts);
    await away.subscribeAsync(`linli/${SITE}/alerts/#`, { qos: 1 });
    await away.endAsync();
    const pendant = await connect(gw1, "p-1", "pw-p1");
    await pendant.publish("devices/ec200/p-1/up", pendantMsg(1, "press"));
    const other = await connect(gw1, "p-2", "pw-p2");
    await other.publish("devices/ec200/p-2/up", pendantMsg(1, "press"));
    for (let i = 0; i < 100 && gw1.engine.openAlerts().length < 2; i++) await sleep(20);
    await other.end();
    await pendant.end();
    await gw1.stop();

    // The crash's leftovers: the alert's close journaled (its record deleted), the session's
    // queue not yet told.
    const journal = Journal.open({ dir: dataDir });
    const alerts = [...journal.entries("alert/")].filter(([, v]) => readAlertRecord(v)?.subject === "p-1");
    expect(alerts).toHaveLength(1);
    for (const [k] of alerts) journal.delete(k);
    const queued = [...journal.entries("mqtt/q/")].map(([, v]) => (v as { t: string }).t);
    expect(queued).toContain(topic);
    journal.close();

    const gw2 = await Gateway.start({ config, logger: silent, dataDir });
    cleanups.push(() => gw2.stop());
    expect(gw2.engine.openAlerts().map((a) => a.subject.id)).toEqual(["p-2"]);
    const back = await connectListening(`mqtt://127.0.0.1:${gw2.mqttPort}`, consoleOpts);
    cleanups.push(() => back.end());
    await back.waitFor((m) => m.topic === topic && m.payload.length > 0, 5000);
    await sleep(500);
    // What the console is left with for that topic: the last message on it.
    const last = back.messages.filter((m) => m.topic === topic).at(-1);
    expect(last?.payload.length === 0 || last?.json().state === "closed").toBe(true);
    // The alert still open is not touched: its last word is its state.
    const open = back.messages.filter((m) => m.topic === `linli/${SITE}/alerts/p1/EMERGENCY_CALL/p-2`).at(-1);
    expect(open?.json().state).toBe("active-unacknowledged");
  }, 30_000);
});
