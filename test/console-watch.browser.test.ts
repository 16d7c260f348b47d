/**
 * The console as the person on duty relies on it, in chromium against a real gateway on
 * 127.0.0.1 (console listener, MQTT over WebSocket, real MQTT devices):
 * - while the gateway is down the page says it is not live, greys what it last knew and
 *   never shows "no open alerts" (it cannot know), then recovers by itself;
 * - an unacknowledged P1 stays in a bar on top of the page (scrolled or not, and in the tab's
 *   title) until someone acknowledges it;
 * - a re-render does not take the keyboard's place away;
 * - results name the alert, device and household, not their ids.
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
import { consoleSiteConfig, haveBrowser, launchChromium, OPERATOR } from "./support/console-browser.js";
import { freePort } from "./support/free-port.js";
import { connect, doorMsg, pendantMsg, type TestClient } from "./support/harness.js";

const browserThere = haveBrowser("console watch test");

describe.skipIf(!browserThere)("operators' console: not live, P1 on top, keyboard, results", () => {
  let dataDir: string;
  let consolePort: number;
  let gw: Gateway | null = null;
  let browser: Browser;
  const clients: TestClient[] = [];

  const startGateway = async () => {
    gw = await Gateway.start({
      config: validateConfig(consoleSiteConfig(consolePort), "console watch test"),
      logger: createLogger({ level: "silent" }),
      dataDir,
    });
    return gw;
  };

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), "linli-console-watch-"));
    consolePort = await freePort();
    await startGateway();
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
    await browser?.close();
    await gw?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }, 30_000);

  const openConsole = async (viewport = { width: 1280, height: 800 }, port = consolePort): Promise<Page> => {
    const page = await browser.newPage({ viewport });
    page.on("pageerror", (err) => console.error(`console page error: ${err.message}`));
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.fill("#username", OPERATOR.name);
    await page.fill("#password", OPERATOR.password);
    await page.click("#login-button");
    await page.locator("#conn", { hasText: "已连接" }).waitFor({ timeout: 10_000 });
    return page;
  };

  it("says it is not live while the gateway is down, never an all-clear, and recovers by itself", async () => {
    const page = await openConsole();
    await page.locator("#alerts", { hasText: "没有未处理的告警" }).waitFor({ timeout: 5000 });
    expect(await page.locator("#not-live").isVisible()).toBe(false);

    await (gw as Gateway).stop();
    await page.locator("#conn", { hasText: "正在重新连接…" }).waitFor({ timeout: 10_000 });
    const banner = page.locator("#not-live");
    await banner.waitFor({ state: "visible", timeout: 2000 });
    expect(await banner.textContent()).toMatch(
      /^与网关的连接已于 \d\d\/\d\d \d\d:\d\d:\d\d 断开：.*可能已过时/,
    );
    // What it last knew is greyed, and "no open alerts" is not claimed: it cannot know.
    expect(await page.locator("#app").getAttribute("class")).toContain("stale");
    const alerts = (await page.locator("#alerts").textContent()) ?? "";
    expect(alerts).not.toContain("没有未处理的告警");
    expect(alerts).toContain("未连接网关");

    await startGateway();
    await page.locator("#conn", { hasText: "已连接" }).waitFor({ timeout: 15_000 });
    await banner.waitFor({ state: "hidden", timeout: 2000 });
    expect(await page.locator("#app").getAttribute("class")).not.toContain("stale");
    await page.locator("#alerts", { hasText: "没有未处理的告警" }).waitFor({ timeout: 5000 });
    await page.close();
  }, 60_000);

  it("notices a link that dies silently (no close, e.g. Wi-Fi gone) within ~20 s and says it is not live", async () => {
    // A TCP relay in front of the console that can go silent: it stops passing bytes, closes nothing.
    const sockets = new Set<Socket>();
    let silent = false;
    const relay: Server = createServer((inbound) => {
      const outbound = tcpConnect(consolePort, "127.0.0.1");
      sockets.add(inbound).add(outbound);
      for (const [from, to] of [
        [inbound, outbound],
        [outbound, inbound],
      ] as const) {
        from.on("data", (chunk) => {
          if (!silent) to.write(chunk);
        });
        from.on("error", () => to.destroy());
        from.on("close", () => to.destroy());
      }
    });
    await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
    const relayPort = (relay.address() as { port: number }).port;
    try {
      const page = await openConsole(undefined, relayPort);
      silent = true;
      const lostAt = Date.now();
      await page.locator("#not-live").waitFor({ state: "visible", timeout: 30_000 });
      console.log(`console noticed a silent link after ${Date.now() - lostAt} ms`);
      expect(await page.locator("#conn").textContent()).toBe("正在重新连接…");
      await page.close();
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => relay.close(resolve));
    }
  }, 60_000);

  it("keeps an unacknowledged P1 on top of the page until it is acknowledged, by keyboard too", async () => {
    const page = await openConsole({ width: 820, height: 600 });
    const g = gw as Gateway;
    const pendant = await connect(g, "pend-1", "pw-pend-1");
    clients.push(pendant);
    await pendant.publish("devices/ec200/pend-1/up", pendantMsg(1, "press"));
    const bar = page.locator("#p1-banner");
    await bar.waitFor({ state: "visible", timeout: 5000 });
    expect(await bar.textContent()).toContain("1 条一级告警未确认：紧急呼叫 · 1号楼 101室 张阿姨");
    expect(await page.title()).toBe("【1 条一级告警未确认】邻里 · 运营控制台");
    // In English, English punctuation (it read "not acknowledged：" with the Chinese colon).
    await page.locator("header .lang").click();
    expect(await bar.textContent()).toContain(
      "1 P1 alert(s) not acknowledged: Emergency call · 1号楼 101室 张阿姨",
    );
    await page.locator("header .lang").click();

    // Long after the flash, scrolled to the bottom of the page: still in view.
    await page.waitForTimeout(3500);
    await page.evaluate("window.scrollTo(0, document.body.scrollHeight)");
    await page.waitForTimeout(200);
    const box = await bar.boundingBox();
    expect(box).not.toBeNull();
    expect((box as { y: number }).y).toBeGreaterThanOrEqual(0);
    expect((box as { y: number }).y).toBeLessThan(600);

    // 查看 brings the alert into view with its 确认 focused: Enter opens the dialog.
    await page.click("#p1-show");
    expect(await page.evaluate("document.activeElement?.dataset.action")).toBe("ack");
    await page.keyboard.press("Enter");
    await page.locator("#dialog[open]").waitFor({ timeout: 2000 });
    await page.click("#dialog-ok");
    await bar.waitFor({ state: "hidden", timeout: 5000 });
    expect(await page.title()).toBe("邻里 · 运营控制台");
    // The result names the alert and the household (the acknowledged call has closed by then).
    await page
      .locator("#results li", { hasText: "确认 紧急呼叫 · 1号楼 101室 张阿姨：成功" })
      .waitFor({ timeout: 5000 });
    await page.close();
  }, 60_000);

  it("keeps the keyboard's place when the alert list changes, and names the household in results", async () => {
    const page = await openConsole();
    const g = gw as Gateway;
    const door2 = await connect(g, "door-2", "pw-door-2");
    clients.push(door2);
    await door2.publish("devices/ds10/door-2/up", doorMsg(1, "closed", { tamper: true }));
    const ack = page.locator('[data-code="TAMPER"] button[data-action="ack"]');
    await ack.waitFor({ timeout: 5000 });
    await ack.focus();
    const target = await ack.getAttribute("data-target");

    // Another alert arrives: the list is rebuilt, the focused 确认 stays focused.
    const door3 = await connect(g, "door-3", "pw-door-3");
    clients.push(door3);
    await door3.publish("devices/ds10/door-3/up", doorMsg(1, "closed", { tamper: true }));
    await page.locator("[data-code=TAMPER]").nth(1).waitFor({ timeout: 5000 });
    // Every card's heading says where to go.
    expect(await page.locator("[data-code=TAMPER] .code").allTextContents()).toEqual(
      expect.arrayContaining(["设备外壳被打开 · 2号楼 203室 李大爷", "设备外壳被打开 · 1号楼 101室 张阿姨"]),
    );
    await page.waitForTimeout(300);
    expect(await page.evaluate("document.activeElement?.dataset.target")).toBe(target);

    // Acknowledged: grey, as the operators' guide says; the other still waiting is not.
    await page.keyboard.press("Enter");
    await page.locator("#dialog[open]").waitFor({ timeout: 2000 });
    await page.click("#dialog-ok");
    const acked = page.locator(`[data-alert-id="${target}"]`);
    await acked.locator(".badge", { hasText: "已确认" }).waitFor({ timeout: 5000 });
    expect(await acked.getAttribute("class")).toContain("quiet");
    expect(await page.locator("[data-code=TAMPER]:not(.quiet)").count()).toBe(1);

    // Away pauses the resident's welfare checks: asked first, never on a stray tap.
    await page.locator('#households tr[data-household="hh-203"] button[data-action="away"]').click();
    await page.locator("#dialog[open]").waitFor({ timeout: 2000 });
    expect(await page.locator("#dialog-title").textContent()).toBe(
      "设为外出（暂停关怀检查） · 2号楼 203室 李大爷",
    );
    expect(await page.locator("#dialog-note").isVisible()).toBe(false);
    await page.click("#dialog-ok");
    await page
      .locator("#results li", { hasText: "住户外出/回家 2号楼 203室 李大爷：成功" })
      .waitFor({ timeout: 5000 });
    // Away until a time (a request from the command line, operators' guide): the table says until when.
    const ops = await connect(g, OPERATOR.name, OPERATOR.password);
    clients.push(ops);
    const until = Math.floor(Date.now() / 60_000) * 60_000 + 3 * 86_400_000;
    const p = Object.fromEntries(
      new Intl.DateTimeFormat("en-GB", {
        timeZone: "Asia/Shanghai",
        month: "2-digit",
        day: "2-digit",
        hour: "2-digit",
        minute: "2-digit",
        hourCycle: "h23",
      })
        .formatToParts(until)
        .map((x) => [x.type, x.value]),
    );
    await ops.publish("linli/hp/away/hh-101", JSON.stringify({ away: true, until }));
    await page
      .locator('#households tr[data-household="hh-101"]', {
        hasText: `外出（至 ${p.month}/${p.day} ${p.hour}:${p.minute}`,
      })
      .waitFor({ timeout: 5000 });
    await page.close();
  }, 60_000);

  it("says a device command that left for a device with no connection was not delivered, not 成功", async () => {
    const page = await openConsole();
    const g = gw as Gateway;
    const pendant = await connect(g, "pend-1", "pw-pend-1");
    await pendant.end();
    const ops = await connect(g, OPERATOR.name, OPERATOR.password);
    clients.push(ops);
    await ops.publish("linli/hp/cmd/pend-1/locate", JSON.stringify({ id: "l-1" }));
    const line = page.locator("#results li", { hasText: "未送达，设备重新连接后发送" });
    await line.waitFor({ timeout: 5000 });
    expect(await line.textContent()).toContain("设备当前未连接");
    expect(await line.getAttribute("class")).toBe("refused");
    await page.close();
  }, 60_000);

  it("shows why an alert is shelved, for the next shift", async () => {
    const page = await openConsole();
    const door2 = await connect(gw as Gateway, "door-2", "pw-door-2");
    clients.push(door2);
    await door2.publish("devices/ds10/door-2/up", doorMsg(2, "closed", { tamper: true }));
    const card = page.locator('[data-code="TAMPER"]').filter({ hasText: "2号楼 203室 李大爷" });
    await card.locator('button[data-action="shelve"]').click();
    await page.locator("#dialog[open]").waitFor({ timeout: 2000 });
    // What the field is for: the shelve's reason (its `reason`), not an ack's note.
    expect(await page.locator("#dialog-note-row span").textContent()).toBe("原因（可选）");
    await page.fill("#dialog-note", "外壳松动，明天维修");
    await page.click("#dialog-ok");
    await card.locator(".badge", { hasText: "已搁置" }).waitFor({ timeout: 5000 });
    await card.filter({ hasText: "外壳松动，明天维修" }).waitFor({ timeout: 2000 });
    await page.close();
  }, 60_000);
});
