/**
 * The console on a big site, in chromium against a real gateway on 127.0.0.1: thousands of open
 * alerts, published into the gateway's broker as its publisher does (retained, QoS 1).
 * - after a (re)connection the page says it is syncing until every retained state is in, and
 *   never "no open alerts" meanwhile; connected before the gateway's `online`, it syncs when that comes;
 * - P3/P4 fold into a line per priority (P1/P2 stay on top), kept across a reload, by keyboard;
 * - an update keeps the card in view where it is and rebuilds only the cards that changed;
 * - a reading rebuilds its device's row only, not the table of a site with 600 devices.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../gateway/config/load.js";
import { Gateway } from "../gateway/gateway.js";
import { createLogger } from "../gateway/log.js";
import type { NorthboundSink } from "../gateway/northbound/sink.js";
import {
  consoleSiteConfig,
  type FakeAlert,
  fakeAlert,
  haveBrowser,
  launchChromium,
  OPERATOR,
  publishAlerts,
  SITE,
} from "./support/console-browser.js";
import { freePort } from "./support/free-port.js";

const browserThere = haveBrowser("console sync test");

/**
 * Records what the alert list said, each time it changed: "syncing", its hint ("没有未处理的告警",
 * …), "cards" or "empty"; counts the alert cards and table rows the page built (a node never seen
 * before) and the cards it took out of the page (alone or inside a group).
 */
const RECORDER = `(() => {
  window.__states = [];
  window.__cardsBuilt = 0;
  window.__rowsBuilt = 0;
  window.__cardsRemoved = 0;
  const seen = new WeakSet();
  new MutationObserver((records) => {
    for (const r of records)
      for (const n of r.removedNodes)
        if (n.nodeType === 1) window.__cardsRemoved += (n.classList.contains("alert") ? 1 : 0) + n.querySelectorAll(".alert").length;
    for (const r of records)
      for (const n of r.addedNodes) {
        if (n.nodeType !== 1) continue;
        for (const c of [n, ...n.querySelectorAll(".alert, tr")])
          if (!seen.has(c) && (c.classList.contains("alert") || c.tagName === "TR")) {
            seen.add(c);
            if (c.tagName === "TR") window.__rowsBuilt++;
            else window.__cardsBuilt++;
          }
      }
    const box = document.querySelector("#alerts");
    if (!box) return;
    const now = box.querySelector(".syncing")
      ? "syncing"
      : (box.querySelector(".hint")?.textContent ??
        (box.querySelector(".alert, .folded") ? "cards" : "empty"));
    if (window.__states[window.__states.length - 1] !== now) window.__states.push(now);
  }).observe(document, { subtree: true, childList: true, characterData: true });
})()`;

describe.skipIf(!browserThere)("operators' console: sync, fold, 1,000 open alerts", () => {
  let dataDir: string;
  let consolePort: number;
  let gw: Gateway;
  let browser: Browser;
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), "linli-console-sync-"));
    consolePort = await freePort();
    gw = await Gateway.start({
      config: validateConfig(consoleSiteConfig(consolePort), "console sync test"),
      logger: createLogger({ level: "silent" }),
      dataDir,
    });
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    console.log(`console sync timings (ms): ${JSON.stringify(timings)}`);
    await browser?.close();
    await gw?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }, 30_000);

  const login = async (page: Page) => {
    await page.fill("#username", OPERATOR.name);
    await page.fill("#password", OPERATOR.password);
    await page.click("#login-button");
  };

  const openConsole = async (port = consolePort, viewport = { width: 1280, height: 800 }): Promise<Page> => {
    const page = await browser.newPage({ viewport });
    page.on("pageerror", (err) => console.error(`console page error: ${err.message}`));
    await page.addInitScript({ content: RECORDER });
    await page.goto(`http://127.0.0.1:${port}/`);
    await login(page);
    return page;
  };

  const countIs = (page: Page, n: number, timeout = 30_000) =>
    page.locator("#alert-count", { hasText: new RegExp(`^\\(${n}\\)$`) }).waitFor({ timeout });

  const states = (page: Page) => page.evaluate("window.__states") as Promise<string[]>;

  it("says it is syncing after a (re)connection until every retained state is in, never 'no alerts' meanwhile (3,000 open)", async () => {
    const alerts: FakeAlert[] = [];
    for (let i = 0; i < 3000; i++) alerts.push(fakeAlert(i, i < 3 ? 1 : i < 30 ? 2 : i < 300 ? 3 : 4));
    publishAlerts(gw, alerts);

    // Through a relay that can cut the link, as a Wi-Fi drop or a cable would.
    const sockets = new Set<Socket>();
    const relay: Server = createServer((inbound) => {
      const outbound = tcpConnect(consolePort, "127.0.0.1");
      sockets.add(inbound).add(outbound);
      inbound.pipe(outbound).pipe(inbound);
      for (const s of [inbound, outbound]) {
        s.on("error", () => undefined);
        s.on("close", () => {
          inbound.destroy();
          outbound.destroy();
        });
      }
    });
    await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
    const relayPort = (relay.address() as { port: number }).port;
    try {
      const loginAt = Date.now();
      const page = await openConsole(relayPort);
      await countIs(page, 3000, 90_000);
      timings.loginTo3000Shown = Date.now() - loginAt;
      await page.locator("#conn", { hasText: "已连接" }).waitFor({ timeout: 5000 });
      let seen = await states(page);
      expect(seen).not.toContain("没有未处理的告警");
      expect(seen).toContain("syncing");
      expect(seen[seen.length - 1]).toBe("cards");
      expect(await page.locator("#alerts .syncing").count()).toBe(0);

      // The link drops and comes back: the page rebuilds from the retained states again.
      await page.evaluate("window.__states = []");
      for (const s of sockets) s.destroy();
      sockets.clear();
      await page.locator("#not-live").waitFor({ state: "visible", timeout: 10_000 });
      const cutAt = Date.now();
      await page.locator("#not-live").waitFor({ state: "hidden", timeout: 15_000 });
      await countIs(page, 3000, 60_000);
      await page.locator("#conn", { hasText: "已连接" }).waitFor({ timeout: 5000 });
      timings.reconnectTo3000Shown = Date.now() - cutAt;
      seen = await states(page);
      expect(seen).not.toContain("没有未处理的告警");
      expect(seen).toContain("syncing");
      expect(seen[seen.length - 1]).toBe("cards");

      // All closed: now, and only now, the all-clear.
      const closedAt = Date.now();
      publishAlerts(gw, alerts, true);
      // 3,000 closes in a burst; the shared machine under the whole suite took over 10 s.
      await page.locator("#alerts .hint", { hasText: "没有未处理的告警" }).waitFor({ timeout: 60_000 });
      timings.all3000ClosedShown = Date.now() - closedAt;
      await page.close();
    } finally {
      publishAlerts(gw, alerts, true);
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => relay.close(resolve));
    }
  }, 180_000);

  it("syncs when the alerts summary names what it holds, not at the retained 'online' (a gateway still starting)", async () => {
    const alerts: FakeAlert[] = [];
    for (let i = 0; i < 50; i++) alerts.push(fakeAlert(40_000 + i, 3));
    const sink = (gw.publisher as unknown as { sink: NorthboundSink }).sink;
    // As at start: the open alerts are being republished, their summary not published yet; the
    // retained `online` of gateway/status (before 0.13.28 the page's marker) is there already.
    sink.publish(`linli/${SITE}/alerts/summary`, "", 1, true);
    sink.publish(`linli/${SITE}/gateway/status`, "online", 1, true);
    for (const a of alerts) sink.publish(a.topic, JSON.stringify(a.body), 1, true);
    const page = await openConsole();
    try {
      await page.locator("#conn", { hasText: "正在同步…" }).waitFor({ timeout: 10_000 });
      await page.waitForTimeout(1500);
      expect(await page.locator("#alerts .syncing").count()).toBe(1);
      expect(await page.locator("#alert-count").textContent()).toBe("(50…)");
      // The summary (the gateway's flush at start) names 51: one more is still on its way.
      const late = fakeAlert(40_050, 3);
      for (const a of [...alerts, late])
        gw.publisher.summary.set(
          a.topic,
          a.body.priority as number,
          a.body.id as string,
          a.body.rev as number,
        );
      gw.publisher.summary.flush();
      await page
        .locator("#alerts .syncing", { hasText: "已收到 50 条，共 51 条" })
        .waitFor({ timeout: 5000 });
      expect(await page.locator("#conn").textContent()).toBe("正在同步…");
      sink.publish(late.topic, JSON.stringify(late.body), 1, true);
      alerts.push(late);
      await page.locator("#conn", { hasText: "已连接" }).waitFor({ timeout: 5000 });
      await countIs(page, 51);
      expect(await page.locator("#alerts .syncing").count()).toBe(0);
      expect(await states(page)).not.toContain("没有未处理的告警");
    } finally {
      publishAlerts(gw, alerts, true);
      await page.close();
    }
  }, 60_000);

  it("resolves a mismatch that lasts with list (0.13.31): drops a closed alert, fetches a stale one again, says so", async () => {
    const sink = (gw.publisher as unknown as { sink: NorthboundSink }).sink;
    const alerts: FakeAlert[] = [];
    for (let i = 0; i < 5; i++) alerts.push(fakeAlert(50_000 + i, 2));
    publishAlerts(gw, alerts);
    // A state the broker still holds that the gateway no longer names (a ghost, closed long ago),
    // and an alert the gateway names at rev 2 whose state the broker has at rev 1 only.
    const ghost = fakeAlert(50_100, 3);
    sink.publish(ghost.topic, JSON.stringify(ghost.body), 1, true);
    const stale = alerts[2] as FakeAlert;
    const newer: Record<string, unknown> = { ...stale.body, rev: 2, deviceName: "门磁 新状态" };
    gw.publisher.summary.set(stale.topic, 2, newer.id as string, 2);
    gw.publisher.summary.flush();
    const page = await openConsole();
    try {
      await countIs(page, 6, 10_000).catch(() => {});
      expect(await page.locator("#conn").textContent()).toBe("正在同步…");
      // First round (after the grace): the ghost dropped, the stale one fetched again (rev 1 still).
      await page
        .locator("#alerts .sync-resolve", {
          hasText: "已与网关核对：重新获取 1 条缺失或过期的告警，移除 1 条已结束的告警",
        })
        .waitFor({ timeout: 20_000 });
      expect(await page.locator("#alert-count").textContent()).toBe("(5…)");
      expect(await page.locator("#conn").textContent()).toBe("正在同步…");
      // The broker gets the newer state without the page seeing it live; the next round fetches it.
      const persistence = (
        gw.broker.aedes as unknown as { persistence: { storeRetained(p: unknown): Promise<void> } }
      ).persistence;
      await persistence.storeRetained({
        cmd: "publish",
        topic: stale.topic,
        payload: Buffer.from(JSON.stringify(newer)),
        qos: 1,
        retain: true,
        dup: false,
      });
      await page.locator("#conn", { hasText: "已连接" }).waitFor({ timeout: 30_000 });
      await page.locator("#alerts", { hasText: "门磁 新状态" }).waitFor({ timeout: 5000 });
      await countIs(page, 5);
      expect(await page.locator("#alerts .sync-resolve").count()).toBe(0);
      // The sync's own requests are not shown among the operator's results.
      expect(await page.locator("#results", { hasText: "未结束告警" }).count()).toBe(0);
      alerts[2] = { topic: stale.topic, body: newer };
    } finally {
      publishAlerts(gw, [...alerts, ghost], true);
      await page.close();
    }
  }, 90_000);

  it("folds P3/P4 into a line per priority with counts, P1/P2 on top; kept across a reload; by keyboard", async () => {
    const alerts: FakeAlert[] = [];
    for (let i = 0; i < 245; i++)
      alerts.push(fakeAlert(10_000 + i, i < 2 ? 1 : i < 5 ? 2 : i < 45 ? 3 : 4, Date.now() - 600_000));
    publishAlerts(gw, alerts);
    const page = await openConsole();
    try {
      await foldTest(page);
    } finally {
      publishAlerts(gw, alerts, true);
      await page.close();
    }
  }, 90_000);

  const foldTest = async (page: Page) => {
    await countIs(page, 245);
    const fold = page.locator("#fold-low");
    expect(await fold.textContent()).toBe("▾ 收起三级、四级告警（240 条）");
    expect(await fold.getAttribute("aria-expanded")).toBe("true");
    expect(await page.locator(".alert.p3, .alert.p4").count()).toBe(240);

    await fold.focus();
    await page.keyboard.press("Enter");
    await page.locator(".folded").first().waitFor({ timeout: 2000 });
    expect(await page.locator(".alert.p3, .alert.p4").count()).toBe(0);
    expect(await page.locator(".alert.p1, .alert.p2").count()).toBe(5);
    expect(await page.locator(".folded").allTextContents()).toEqual([
      "三级 · 注意：40 条（40 条未确认）",
      "四级 · 提示：200 条（200 条未确认）",
    ]);
    expect(await fold.textContent()).toBe("▸ 展开三级、四级告警（240 条）");
    expect(await fold.getAttribute("aria-expanded")).toBe("false");
    expect(await page.evaluate("document.activeElement?.id")).toBe("fold-low");
    // P1 and P2 stay above the fold.
    const order = await page
      .locator("[data-alert-id], .folded")
      .evaluateAll((els) => els.map((e) => e.getAttribute("data-priority")));
    expect(order).toEqual(["1", "1", "2", "2", "2", "3", "4"]);

    // A reload (login again): still folded.
    await page.reload();
    await login(page);
    await countIs(page, 245);
    await page.locator(".folded").first().waitFor({ timeout: 5000 });
    expect(await page.locator(".alert.p3, .alert.p4").count()).toBe(0);
    await page.locator("header .lang").click();
    expect(await page.locator(".folded").allTextContents()).toEqual([
      "P3 · attention: 40 open (40 unacknowledged)",
      "P4 · information: 200 open (200 unacknowledged)",
    ]);
    expect(await fold.textContent()).toBe("▸ Show P3 and P4 alerts (240)");
    await fold.click();
    expect(await page.locator(".alert.p3, .alert.p4").count()).toBe(240);
  };

  it("with 1,000 open alerts keeps the card in view in place on updates above it and builds only changed cards", async () => {
    const alerts: FakeAlert[] = [];
    for (let i = 0; i < 1000; i++)
      alerts.push(fakeAlert(20_000 + i, i < 50 ? 2 : i < 250 ? 3 : 4, Date.now() - 7_200_000));
    publishAlerts(gw, alerts);
    const fresh = fakeAlert(30_000, 2);
    const loginAt = Date.now();
    const page = await openConsole(consolePort, { width: 820, height: 1180 });
    try {
      await countIs(page, 1000, 60_000);
      timings.loginTo1000Shown = Date.now() - loginAt;
      await scrollTest(page, alerts, fresh);
    } finally {
      publishAlerts(gw, [...alerts, fresh], true);
      await page.close();
    }
  }, 120_000);

  const scrollTest = async (page: Page, alerts: FakeAlert[], fresh: FakeAlert) => {
    // Reading a P4 in the middle of the list.
    const target = alerts[600] as FakeAlert;
    const card = page.locator(`[data-alert-id="${target.body.id}"]`);
    await card.evaluate((e) => e.scrollIntoView({ block: "center" }));
    await page.waitForTimeout(300);
    const before = (await card.boundingBox())?.y as number;
    await page.evaluate("window.__cardsBuilt = 0; window.__cardsRemoved = 0");

    // A new P2 above it, one P3 above it changed, one P4 below it gone.
    const changed = { ...(alerts[100] as FakeAlert), body: { ...(alerts[100] as FakeAlert).body, count: 2 } };
    const startedAt = Date.now();
    publishAlerts(gw, [fresh, changed]);
    publishAlerts(gw, [alerts[900] as FakeAlert], true);
    await page.locator(`[data-alert-id="${fresh.body.id}"]`).waitFor({ state: "attached", timeout: 5000 });
    await countIs(page, 1000);
    timings.updateShownWith1000 = Date.now() - startedAt;
    await page.waitForTimeout(300);
    const after = (await card.boundingBox())?.y as number;
    expect(Math.abs(after - before)).toBeLessThanOrEqual(2);
    expect(await page.evaluate("window.__cardsBuilt")).toBe(2);
    // Taken out of the page: the closed card and the changed one's old card, not every card of
    // their groups (a group taken out and put back is styled and laid out anew).
    expect(await page.evaluate("window.__cardsRemoved")).toBe(2);

    // The card at the top of the view goes (closed): the one after it stays where it was.
    const [topId, nextId] = (await page.evaluate(`(() => {
      const top = [...document.querySelectorAll("#alerts [data-alert-id]")].find((c) => c.getBoundingClientRect().bottom > 0);
      return [top.dataset.alertId, top.nextElementSibling.dataset.alertId];
    })()`)) as [string, string];
    const next = page.locator(`[data-alert-id="${nextId}"]`);
    const nextBefore = (await next.boundingBox())?.y as number;
    publishAlerts(gw, [alerts.find((a) => a.body.id === topId) as FakeAlert], true);
    await page.locator(`[data-alert-id="${topId}"]`).waitFor({ state: "detached", timeout: 5000 });
    await page.waitForTimeout(300);
    expect(Math.abs(((await next.boundingBox())?.y as number) - nextBefore)).toBeLessThanOrEqual(2);
  };

  it("a reading rebuilds its device's row only, not the device table of a site with 600 devices", async () => {
    const port = await freePort();
    const big = consoleSiteConfig(port);
    big.devices = Array.from({ length: 600 }, (_, i) => ({
      id: `door-${i}`,
      model: "ds10",
      password: `pw-door-${i}`,
      household: i % 2 ? "hh-101" : "hh-203",
      name: `${1 + (i % 30)}号楼门磁 ${i}`,
    })) as typeof big.devices;
    const bigDir = mkdtempSync(path.join(tmpdir(), "linli-console-big-"));
    const site = await Gateway.start({
      config: validateConfig(big, "console big site"),
      logger: createLogger({ level: "silent" }),
      dataDir: bigDir,
    });
    try {
      const page = await openConsole(port);
      await page.locator("#conn", { hasText: "已连接" }).waitFor({ timeout: 10_000 });
      await page.locator('#devices tr[data-device="door-599"]').waitFor({ state: "attached", timeout: 5000 });
      await page.evaluate("window.__rowsBuilt = 0");
      const sink = (site.publisher as unknown as { sink: NorthboundSink }).sink;
      for (const battery of [77, 76]) {
        sink.publish(
          "linli/hp/telemetry/ds10/door-5",
          JSON.stringify({
            deviceId: "door-5",
            model: "ds10",
            metrics: { battery: { value: battery, unit: "%" } },
          }),
          0,
          false,
        );
        await page
          .locator('#devices tr[data-device="door-5"]', { hasText: `电量 ${battery}%` })
          .waitFor({ timeout: 5000 });
      }
      // The same reading again changes nothing on the page.
      sink.publish(
        "linli/hp/telemetry/ds10/door-5",
        JSON.stringify({ deviceId: "door-5", model: "ds10", metrics: { battery: { value: 76, unit: "%" } } }),
        0,
        false,
      );
      await page.waitForTimeout(300);
      expect(await page.evaluate("window.__rowsBuilt")).toBe(2);
      expect(await page.locator("#devices tr").count()).toBe(600);
      await page.close();
    } finally {
      await site.stop();
      rmSync(bigDir, { recursive: true, force: true });
    }
  }, 90_000);
});
