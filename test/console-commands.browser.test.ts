/**
 * Device commands from the operators' console in a real browser (chromium, playwright-core)
 * against a real gateway and a GD-2 emulator (sim/mqtt/gd2.ts): a GAS_LEAK's card offers the
 * detector's commands; closing the valve is asked first and goes only when confirmed; what became
 * of it (sent, the device's reply, queued for a detector away, delivered later) is said in the
 * results; a responder is offered none.
 *
 * Without chromium the file is skipped with a message (test/support/console-browser.ts).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../gateway/config/load.js";
import { Gateway } from "../gateway/gateway.js";
import { createLogger } from "../gateway/log.js";
import { Gd2 } from "../sim/mqtt/gd2.js";
import { consoleSiteConfig, haveBrowser, launchChromium, OPERATOR } from "./support/console-browser.js";
import { freePort } from "./support/free-port.js";
import { sleep } from "./support/harness.js";

const browserThere = haveBrowser("console commands browser test");
const RESPONDER = { name: "desk", password: "desk-pw" };

describe.skipIf(!browserThere)("device commands in the console (chromium)", () => {
  let dataDir: string;
  let gw: Gateway;
  let browser: Browser;
  let consolePort: number;
  const detectors: Gd2[] = [];

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), "linli-console-cmd-"));
    consolePort = await freePort();
    const base = consoleSiteConfig(consolePort);
    gw = await Gateway.start({
      config: validateConfig(
        {
          ...base,
          operators: [OPERATOR, { ...RESPONDER, role: "responder" }],
          devices: [
            ...(base.devices ?? []),
            {
              id: "gas-1",
              model: "gd2",
              password: "pw-gas-1",
              household: "hh-101",
              name: "张阿姨家燃气报警器",
              location: "厨房",
            },
          ],
        },
        "console commands test",
      ),
      logger: createLogger({ level: "silent" }),
      dataDir,
    });
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await Promise.all(detectors.map((d) => d.stop()));
    await browser?.close();
    await gw?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }, 30_000);

  const detector = async (): Promise<Gd2> => {
    const d = new Gd2({
      deviceId: "gas-1",
      brokerUrl: `mqtt://127.0.0.1:${gw.mqttPort}`,
      password: "pw-gas-1",
      heartbeatIntervalMs: 0,
      valveTravelMs: 200,
      autoClose: false,
    });
    detectors.push(d);
    await d.start();
    return d;
  };

  const openConsole = async (who: { name: string; password: string }): Promise<Page> => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on("pageerror", (err) => console.error(`console page error: ${err.message}`));
    await page.goto(`http://127.0.0.1:${consolePort}/`);
    await page.fill("#username", who.name);
    await page.fill("#password", who.password);
    await page.click("#login-button");
    await page.locator("#conn", { hasText: "已连接" }).waitFor({ timeout: 10_000 });
    return page;
  };

  it("closes the valve of a gas leak from its card, asked first, and says what became of each command", async () => {
    const d = await detector();
    const page = await openConsole(OPERATOR);
    await d.setLel(18.5);
    const card = page.locator('[data-code="GAS_LEAK"]');
    await card.waitFor({ timeout: 5000 });
    const close = card.locator('button[data-action="cmd"][data-command="valve_close"]');
    await close.waitFor({ timeout: 5000 });
    expect(await close.textContent()).toBe("关闭燃气阀");
    // The detector's commands, as its profile declares them, and no other.
    expect(await card.locator('button[data-action="cmd"]').allTextContents()).toEqual([
      "关闭燃气阀",
      "打开燃气阀",
      "自检",
    ]);

    // Asked first, saying it moves equipment; cancelled, nothing is sent.
    await close.click();
    await page.locator("#dialog[open]").waitFor({ timeout: 2000 });
    expect(await page.locator("#dialog-title").textContent()).toContain("确认关闭燃气阀？");
    expect(await page.locator("#dialog-warn").textContent()).toContain("此命令会动作现场设备");
    await page.click('#dialog button[value="cancel"]');
    await sleep(300);
    expect(d.commandsReceived).toEqual([]);

    // Confirmed: sent, and the detector's reply said.
    await close.click();
    await page.click("#dialog-ok");
    const results = page.locator("#results li");
    await results
      .filter({ hasText: "设备命令 关闭燃气阀" })
      .filter({ hasText: "设备回复：执行成功" })
      .waitFor({
        timeout: 5000,
      });
    await results
      .filter({ hasText: "关闭燃气阀" })
      .filter({ hasText: "已发送给设备" })
      .waitFor({ timeout: 2000 });
    expect(d.commandsReceived.map((c) => c.cmd)).toEqual(["valve_close"]);
    for (let i = 0; i < 50 && d.valve !== "closed"; i++) await sleep(50);
    expect(d.valve).toBe("closed");

    // The detector away: a self-test (no confirmation: it moves nothing) waits, said not done,
    // then is delivered at its next login.
    await d.stop();
    await sleep(200);
    await page.locator('#devices tr[data-device="gas-1"] button[data-command="self_test"]').click();
    expect(await page.locator("#dialog[open]").count()).toBe(0);
    const queued = results.filter({ hasText: "自检" }).filter({ hasText: "未送达，设备重新连接后发送" });
    await queued.waitFor({ timeout: 5000 });
    expect(await queued.textContent()).toContain("前设备仍未连接则作废");
    expect(await queued.getAttribute("class")).toBe("refused");
    const again = await detector();
    await results
      .filter({ hasText: "自检" })
      .filter({ hasText: "设备重新连接，命令已送达" })
      .waitFor({ timeout: 5000 });
    expect(again.commandsReceived.map((c) => c.cmd)).toEqual(["self_test"]);

    // In English at a click.
    await page.locator("header .lang").click();
    expect(await close.textContent()).toBe("close the gas valve");
    await page.close();
  }, 90_000);

  it("offers a responder no command", async () => {
    const page = await openConsole(RESPONDER);
    await page.locator('[data-code="GAS_LEAK"]').waitFor({ timeout: 5000 });
    await page.locator('#devices tr[data-device="gas-1"]').waitFor({ timeout: 5000 });
    expect(await page.locator('button[data-action="cmd"]').count()).toBe(0);
    await page.close();
  }, 30_000);
});
