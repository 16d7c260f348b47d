/**
 * The operators' console in a real browser: Debian's chromium driven by
 * playwright-core against a real gateway on 127.0.0.1 (its console listener,
 * MQTT over WebSocket into the embedded broker) and real MQTT devices.
 *
 * Without chromium the file is skipped with a message (test/support/console-browser.ts).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Browser, Locator, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../gateway/config/load.js";
import { Gateway } from "../gateway/gateway.js";
import { createLogger } from "../gateway/log.js";
import { consoleSiteConfig, haveBrowser, launchChromium, OPERATOR } from "./support/console-browser.js";
import { freePort } from "./support/free-port.js";
import { connect, doorMsg, pendantMsg, type TestClient } from "./support/harness.js";

const browserThere = haveBrowser("console browser test");
/** Accounts with a role (docs/security.md "Operator roles"); OPERATOR has none: a supervisor. */
const VIEWER = { name: "screen", password: "screen-pw" };
const RESPONDER = { name: "desk", password: "desk-pw" };

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

describe.skipIf(!browserThere)("operators' console in chromium", () => {
  let dataDir: string;
  let consolePort: number;
  let gw: Gateway | null = null;
  let browser: Browser;
  const clients: TestClient[] = [];
  const timings: Record<string, number> = {};

  const startGateway = async () => {
    gw = await Gateway.start({
      config: validateConfig(
        // Shorter than the page's longest choice (8 h), which it must then not offer.
        consoleSiteConfig(consolePort, {
          alerts: { shelveMax: "4h" },
          operators: [OPERATOR, { ...VIEWER, role: "viewer" }, { ...RESPONDER, role: "responder" }],
        }),
        "console test",
      ),
      logger: createLogger({ level: "silent" }),
      dataDir,
    });
    return gw;
  };

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), "linli-console-"));
    consolePort = await freePort();
    await startGateway();
    browser = await launchChromium(["--autoplay-policy=no-user-gesture-required"]);
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

  it("shows plain-text device status and out of service without open alerts, across desks and a restart", async () => {
    const g = gw as Gateway;
    const deskA = await openConsole(OPERATOR.name, OPERATOR.password);
    await textIs(deskA, "#conn", "已连接", 10_000);
    const deskB = await openConsole(OPERATOR.name, OPERATOR.password);
    await textIs(deskB, "#conn", "已连接", 10_000);

    // `online` on devices/<id>/status is plain text, not JSON (docs/topics.md "Status topics").
    const door = await connect(g, "door-3", "pw-door-3");
    clients.push(door);
    const row = (page: Page) => page.locator('#devices tr[data-device="door-3"]');
    const serviceButton = (page: Page) => row(page).locator('button[data-action="service"]');
    // Before its first message a device has no status: said as it is, not "未知" (unknown).
    await contains(row(deskB), "尚无消息", 5000);
    await door.publish("devices/ds10/door-3/up", doorMsg(1, "closed"));
    await contains(row(deskA), "在线", 5000);
    expect(await row(deskA).textContent()).not.toContain("尚无消息");

    // Out of service with no open alert: the console learns it from the gateway, on every desk.
    expect(await serviceButton(deskA).textContent()).toBe("停用");
    await serviceButton(deskA).click();
    await deskA.click("#dialog-ok");
    await contains(serviceButton(deskA), "恢复使用", 5000);
    await contains(serviceButton(deskB), "恢复使用", 5000);
    // Marked beside its link state, not only in the button's label.
    await contains(row(deskB).locator("td").nth(1), "在线 · 已停用", 5000);
    await deskB.close();

    // Journaled: still out of service after a restart, on a desk that opens afterwards.
    await g.stop();
    await textIs(deskA, "#conn", "正在重新连接…", 10_000);
    await startGateway();
    await textIs(deskA, "#conn", "已连接", 15_000);
    const deskC = await openConsole(OPERATOR.name, OPERATOR.password);
    await textIs(deskC, "#conn", "已连接", 10_000);
    await contains(serviceButton(deskC), "恢复使用", 5000);
    await contains(row(deskC), "在线", 5000);
    await contains(serviceButton(deskA), "恢复使用", 5000);

    // Back in service from the other desk.
    await serviceButton(deskC).click();
    await deskC.click("#dialog-ok");
    await contains(serviceButton(deskA), "停用", 5000);
    await contains(serviceButton(deskC), "停用", 5000);
    expect(await row(deskC).locator("td").nth(1).textContent()).toBe("在线");
    await deskC.close();
    await deskA.close();
  }, 90_000);

  it("labels the shelve durations from data, in both languages, however often the texts are applied", async () => {
    const page = await openConsole(OPERATOR.name, OPERATOR.password);
    await textIs(page, "#conn", "已连接", 10_000);
    const options = () =>
      page
        .locator("#dialog-duration option")
        .evaluateAll((os) => os.map((o) => `${(o as unknown as { value: string }).value}=${o.textContent}`));
    const zh = ["15m=15 分钟", "30m=30 分钟", "1h=1 小时", "4h=4 小时", "8h=8 小时"];
    expect(await options()).toEqual(zh);
    await page.locator("header .lang").click();
    expect(await options()).toEqual(["15m=15 min", "30m=30 min", "1h=1 h", "4h=4 h", "8h=8 h"]);
    await page.locator("header .lang").click();
    expect(await options()).toEqual(zh);
    // Shelving a P2: the dialog offers nothing beyond alerts.shelveMax (4 h here).
    const door = await connect(gw as Gateway, "door-2", "pw-door-2");
    clients.push(door);
    await door.publish("devices/ds10/door-2/up", doorMsg(50, "closed", { tamper: true }));
    await page.locator('[data-code="TAMPER"] button[data-action="shelve"]').click();
    const offered = await page
      .locator("#dialog-duration option")
      .evaluateAll((os) =>
        os.filter((o) => !(o as unknown as { disabled: boolean }).disabled).map((o) => o.textContent),
      );
    expect(offered).toEqual(["15 分钟", "30 分钟", "1 小时", "4 小时"]);
    await page.close();
  });

  it("says how long to wait when the gateway answers 429 to a login", async () => {
    const page = await browser.newPage();
    // The server's ban after repeated failures: 429 with Retry-After in seconds.
    await page.route("**/api/site", (route) =>
      route.fulfill({ status: 429, headers: { "retry-after": "61" }, body: "too many attempts\n" }),
    );
    await page.goto(`http://127.0.0.1:${consolePort}/`);
    await page.fill("#username", OPERATOR.name);
    await page.fill("#password", "whatever");
    await page.click("#login-button");
    await textIs(page, "#login-error", "登录尝试过多，请 2 分钟后再试", 5000);
    await page.locator("#login .lang").click();
    await page.click("#login-button");
    await textIs(page, "#login-error", "Too many attempts, try again in 2 min", 5000);
    await page.close();
  });

  it("says until when logins are paused, in Chinese and English, when a 429 names the ban's end", async () => {
    const page = await browser.newPage();
    await page.route("**/api/site", (route) =>
      route.fulfill({
        status: 429,
        headers: { "retry-after": "61", "linli-logins-paused-until": "22:35" },
        body: "paused\n",
      }),
    );
    await page.goto(`http://127.0.0.1:${consolePort}/`);
    await page.fill("#username", OPERATOR.name);
    await page.fill("#password", "whatever");
    await page.click("#login-button");
    await textIs(
      page,
      "#login-paused",
      "此地址的登录已暂停至 22:35（登录失败次数过多），到时自动恢复。" +
        "Logins from this address are paused until 22:35 (too many failed logins); they resume by themselves.",
      5000,
    );
    expect(await page.locator("#login-error").isHidden()).toBe(true);
    await page.close();
  });

  it("says the gateway is busy, not unreachable, when it answers 503 to a login", async () => {
    const page = await browser.newPage();
    // The password could not be checked now (the verification queue is full): 503.
    await page.route("**/api/site", (route) => route.fulfill({ status: 503, body: "busy\n" }));
    await page.goto(`http://127.0.0.1:${consolePort}/`);
    await page.fill("#username", OPERATOR.name);
    await page.fill("#password", "whatever");
    await page.click("#login-button");
    await textIs(page, "#login-error", "网关正忙，暂时无法核对密码，请稍后再试", 5000);
    await page.close();
  });

  it("names every reading of the built-in models and the flood hold in Chinese and English", async () => {
    // The readings each model publishes, from its profile's `metrics` (devices/<model>.ts).
    const fields: Record<string, string[]> = {};
    for (const model of ["ec200", "ds10", "mfs8", "gk3", "gd2", "lv4"]) {
      const src = readFileSync(path.join("devices", `${model}.ts`), "utf8");
      const keys = new Set<string>();
      for (const m of src.matchAll(/(?:^\s+|m\.)(\w+)(?::| =) \{\s*value:/gm)) keys.add(m[1] as string);
      expect(keys.size, model).toBeGreaterThan(1);
      fields[model] = [...keys];
    }
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${consolePort}/`);
    const out = (await page.evaluate(`(async () => {
      const i18n = await import("/i18n.js");
      const fields = ${JSON.stringify(fields)};
      const names = [];
      for (const [model, keys] of Object.entries(fields))
        for (const key of keys)
          for (const lang of ["zh-CN", "en"]) names.push([lang, model, key, i18n.metricName(lang, model, key)]);
      const label = (lang, model, key, value, unit) => i18n.metricLabel(lang, model, key, unit ? { value, unit } : { value });
      return {
        names,
        samples: [
          label("zh-CN", "gk3", "availabilityToday", 1, "ratio"),
          label("zh-CN", "gk3", "state", "in-service"),
          label("zh-CN", "mfs8", "sounder", false),
          label("zh-CN", "mfs8", "testMode", false),
          label("zh-CN", "mfs8", "faultCode", 0),
          label("zh-CN", "mfs8", "extinguisherSlots", 4),
          label("zh-CN", "lv4", "levelSuspect", false),
          label("zh-CN", "lv4", "level", 2350, "mm"),
          label("zh-CN", "gd2", "level", "high"),
          label("en", "lv4", "heater", true),
          label("en", "gk3", "availabilityToday", 0.9876, "ratio"),
          label("zh-CN", "lv4-yaml", "inletPressure", 0.31, "MPa"),
          label("en", "lv4-yaml", "inletPressureSuspect", true),
        ],
        flood: [i18n.STRINGS["zh-CN"].flood, i18n.STRINGS.en.flood],
        codeNames: i18n.CODE_NAMES,
        badges: [
          { code: "EMERGENCY_CALL", state: "cleared-unacknowledged" },
          { code: "FALL_DETECTED", state: "cleared-unacknowledged" },
          { code: "GAS_LEAK", state: "cleared-unacknowledged" },
          { code: "EMERGENCY_CALL", state: "active-unacknowledged" },
        ].map((a) => i18n.STRINGS["zh-CN"].states[i18n.stateKey(a)]),
      };
    })()`)) as {
      names: [string, string, string, string][];
      samples: string[];
      flood: string[];
      badges: string[];
      codeNames: Record<string, Record<string, string>>;
    };
    // Every alert code of docs/topics.md has a name in both languages (a new code must not show raw).
    const codes = new Set(
      [
        ...readFileSync(path.join("docs", "topics.md"), "utf8").matchAll(/^\| `([A-Z][A-Z_]+)` +\| P[1-4]/gm),
      ].map((m) => m[1] as string),
    );
    expect(codes.size).toBeGreaterThan(20);
    for (const code of codes)
      for (const lang of ["zh-CN", "en"]) expect(out.codeNames[lang]?.[code], `${lang} ${code}`).toBeTruthy();
    // A call whose window ended unanswered has not "returned to normal"; a gas leak that stopped has.
    expect(out.badges).toEqual([
      "呼叫窗口已结束 · 未确认",
      "呼叫窗口已结束 · 未确认",
      "已恢复 · 待确认",
      "未确认",
    ]);
    for (const [lang, model, key, name] of out.names) {
      expect(name, `${lang} ${model} ${key}`).not.toBe(key);
      if (lang === "zh-CN") expect(name, `${model} ${key}`).toMatch(/[\u4e00-\u9fff]/);
      else expect(name, `${model} ${key}`).toMatch(/^[A-Z]/);
    }
    expect(out.samples).toEqual([
      "今日可用率 100 %",
      "状态 服务中",
      "声光报警 关",
      "测试模式 否",
      "故障代码 无",
      "灭火器位数 4",
      "液位读数存疑 否",
      "液位 2350 mm",
      "燃气报警 高报",
      "Heater on",
      "Available today 98.8 %",
      "inlet pressure 0.31 MPa",
      "inlet pressure reading suspect yes",
    ]);
    // During a flood new P3/P4 alerts are held, not grouped (docs/topics.md "Flood").
    const [floodZh, floodEn] = out.flood as [string, string];
    expect(floodZh).not.toContain("合并");
    expect(floodZh).toContain("三级、四级新告警暂不显示");
    expect(floodEn).not.toContain("grouped");
    expect(floodEn).toContain("New P3 and P4 alerts are held");
    await page.close();
  });

  it("offers only the actions of the logged-in operator's role, and says the role", async () => {
    const g = gw as Gateway;
    const door = await connect(g, "door-2", "pw-door-2");
    clients.push(door);
    await door.publish("devices/ds10/door-2/up", doorMsg(90, "closed", { tamper: true }));

    const viewer = await openConsole(VIEWER.name, VIEWER.password);
    await textIs(viewer, "#conn", "已连接", 10_000);
    await textIs(viewer, "#operator-role", "screen · 查看员（只读）", 5000);
    await viewer.locator('[data-code="TAMPER"]').first().waitFor({ timeout: 5000 });
    await viewer.locator('#households tr[data-household="hh-101"]').waitFor({ timeout: 5000 });
    // Reads everything, offered nothing: no button on a card, a device or a household.
    expect(await viewer.locator("#alerts button[data-action]").count()).toBe(0);
    expect(await viewer.locator("#devices button[data-action]").count()).toBe(0);
    expect(await viewer.locator("#households button[data-action]").count()).toBe(0);
    await viewer.close();

    const responder = await openConsole(RESPONDER.name, RESPONDER.password);
    await textIs(responder, "#conn", "已连接", 10_000);
    await textIs(responder, "#operator-role", "desk · 值班员", 5000);
    const card = responder.locator('[data-code="TAMPER"]').first();
    await card.waitFor({ timeout: 5000 });
    expect(await card.locator("button[data-action]").count()).toBeGreaterThan(0);
    expect(await responder.locator("#households button[data-action='away']").count()).toBe(2);
    // Out of service is a supervisor's.
    expect(await responder.locator("#devices button[data-action='service']").count()).toBe(0);
    await responder.close();
  }, 60_000);
});
