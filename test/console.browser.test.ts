/**
 * The operators' console in a real browser: Debian's chromium driven by
 * playwright-core against a real gateway on 127.0.0.1 (its console listener,
 * MQTT over WebSocket into the embedded broker) and real MQTT devices.
 *
 * Without chromium the file is skipped with a message, except under .ci/run (it
 * installs chromium and sets LINLI_REQUIRE_BROWSER), where a missing browser is a failure.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { type Browser, chromium, type Locator, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../gateway/config/load.js";
import type { ConfigInput } from "../gateway/config/schema.js";
import { Gateway } from "../gateway/gateway.js";
import { createLogger } from "../gateway/log.js";
import { connect, doorMsg, pendantMsg, type TestClient } from "./support/harness.js";

const CHROMIUM = process.env.LINLI_CHROMIUM ?? "/usr/bin/chromium";
const haveBrowser = existsSync(CHROMIUM);
if (!haveBrowser) {
  if (process.env.LINLI_REQUIRE_BROWSER)
    throw new Error(`console browser test: no chromium at ${CHROMIUM} (.ci/run installs it)`);
  console.warn(`console browser test SKIPPED: no chromium at ${CHROMIUM} (apt-get install chromium)`);
}

/** Waits until the element's whole text is `text`. */
async function textIs(page: Page, selector: string, text: string, timeout: number): Promise<void> {
  await page.waitForFunction(
    ([sel, want]) =>
      (
        globalThis as unknown as {
          document: { querySelector(s: string): { textContent: string | null } | null };
        }
      ).document.querySelector(sel as string)?.textContent === want,
    [selector, text],
    {
      timeout,
    },
  );
}

/** Waits until the element's text contains `text`. */
async function contains(locator: Locator, text: string, timeout = 2000): Promise<void> {
  await locator.filter({ hasText: text }).first().waitFor({ timeout });
}

const SITE = "hp";
const OPERATOR = { name: "duty", password: "duty-pw" };

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function siteConfig(consolePort: number): ConfigInput {
  return {
    site: { id: SITE, name: "和平路社区服务中心", timezone: "Asia/Shanghai", locale: "zh-CN" },
    mqtt: { listeners: [{ host: "127.0.0.1", port: 0 }] },
    operators: [OPERATOR],
    households: [
      { id: "hh-101", name: "1号楼 101室 张阿姨" },
      { id: "hh-203", name: "2号楼 203室 李大爷" },
    ],
    devices: [
      { id: "pend-1", model: "ec200", password: "pw-pend-1", household: "hh-101", name: "张阿姨的呼叫器" },
      { id: "door-2", model: "ds10", password: "pw-door-2", household: "hh-203", name: "李大爷家门磁" },
    ],
    log: { level: "silent" },
    metrics: { enabled: false },
    console: { enabled: true, host: "127.0.0.1", port: consolePort },
  } as ConfigInput;
}

describe.skipIf(!haveBrowser)("operators' console in chromium", () => {
  let dataDir: string;
  let consolePort: number;
  let gw: Gateway | null = null;
  let browser: Browser;
  const clients: TestClient[] = [];
  const timings: Record<string, number> = {};

  const startGateway = async () => {
    gw = await Gateway.start({
      config: validateConfig(siteConfig(consolePort), "console test"),
      logger: createLogger({ level: "silent" }),
      dataDir,
    });
    return gw;
  };

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), "linli-console-"));
    consolePort = await freePort();
    await startGateway();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // As root in CI, and nothing reaching out of this machine (no update checks, no sync).
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--autoplay-policy=no-user-gesture-required",
      ],
    });
  }, 60_000);

  afterAll(async () => {
    console.log(`console browser timings (ms): ${JSON.stringify(timings)}`);
    for (const c of clients) await c.end().catch(() => undefined);
    await browser?.close();
    await gw?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }, 30_000);

  const openConsole = async (username: string, password: string): Promise<Page> => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    // The page's own errors, in the test's output when something fails.
    page.on("pageerror", (err) => console.error(`console page error: ${err.message}`));
    page.on("console", (msg) => {
      if (msg.type() === "error") console.error(`console page: ${msg.text()}`);
    });
    await page.goto(`http://127.0.0.1:${consolePort}/`);
    await page.fill("#username", username);
    await page.fill("#password", password);
    await page.click("#login-button");
    return page;
  };

  it("refuses a wrong password", async () => {
    const page = await openConsole(OPERATOR.name, "not-the-password");
    await textIs(page, "#login-error", "用户名或密码错误", 5000);
    expect(await page.locator("#app").isHidden()).toBe(true);
    await page.close();
  });

  it("shows a press within 1 s with the household in Chinese, P1 above P2, acknowledges to the pendant, recovers after a restart", async () => {
    const page = await openConsole(OPERATOR.name, OPERATOR.password);
    await textIs(page, "#conn", "已连接", 10_000);
    expect(await page.locator("html").getAttribute("lang")).toBe("zh-CN");
    const g = gw as Gateway;

    // A P2 first (door sensor tamper), then the P1 press: the P1 must be shown above it.
    const door = await connect(g, "door-2", "pw-door-2");
    clients.push(door);
    await door.publish("devices/ds10/door-2/up", doorMsg(1, "closed", { tamper: true }));
    await page.locator('[data-code="TAMPER"]').waitFor({ timeout: 5000 });

    const pendant = await connect(g, "pend-1", "pw-pend-1");
    clients.push(pendant);
    await pendant.subscribe("devices/ec200/pend-1/down");
    const pressedAt = Date.now();
    await pendant.publish("devices/ec200/pend-1/up", pendantMsg(1, "press"));
    const card = page.locator('[data-code="EMERGENCY_CALL"]');
    await card.waitFor({ timeout: 1000 });
    timings.pressToPage = Date.now() - pressedAt;
    await contains(card, "1号楼 101室 张阿姨");
    await contains(card, "紧急呼叫");

    const order = await page
      .locator("[data-alert-id]")
      .evaluateAll((els) => els.map((e) => e.getAttribute("data-priority")));
    expect(order).toEqual(["1", "2"]);

    // Acknowledge from the page: the gateway sends the EC-200 its ack_call downlink.
    const ackClickedAt = Date.now();
    await card.locator('button[data-action="ack"]').click();
    await page.fill("#dialog-note", "已电话联系，社工上门");
    await page.click("#dialog-ok");
    const down = await pendant.waitFor(
      (m) => m.topic === "devices/ec200/pend-1/down" && m.payload.includes("ack_call"),
      5000,
    );
    timings.ackToDownlink = Date.now() - ackClickedAt;
    expect(down.json().cmd ?? down.json().t).toBeDefined();
    await contains(card, "已确认", 5000);
    await contains(card, OPERATOR.name);

    // The gateway restarts (same journal, same console port): the page reconnects and rebuilds.
    await g.stop();
    await textIs(page, "#conn", "正在重新连接…", 10_000);
    const restartedAt = Date.now();
    await startGateway();
    await textIs(page, "#conn", "已连接", 15_000);
    await contains(page.locator('[data-code="EMERGENCY_CALL"]'), "已确认", 10_000);
    await page.locator('[data-code="TAMPER"]').waitFor({ timeout: 5000 });
    timings.restartToRebuilt = Date.now() - restartedAt;

    // English on request.
    await page.locator("header .lang").click();
    await contains(page.locator('[data-code="EMERGENCY_CALL"]'), "acknowledged");

    if (process.env.LINLI_SCREENSHOTS) {
      await page.locator("header .lang").click();
      await page.locator("#flash").waitFor({ state: "hidden", timeout: 5000 });
      await page.screenshot({ path: "docs/console-desktop.png" });
      await page.setViewportSize({ width: 820, height: 1180 });
      await page.screenshot({ path: "docs/console-tablet.png" });
    }
    await page.close();
  }, 90_000);
});
