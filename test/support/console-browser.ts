/**
 * What the console's browser tests share: Debian's chromium (driven by playwright-core), the
 * small site they run the gateway with, and its operator. Without chromium a file is skipped with
 * a message, except under .ci/run (it installs chromium and sets LINLI_REQUIRE_BROWSER), where a
 * missing browser is a failure.
 */
import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";
import type { ConfigInput } from "../../gateway/config/schema.js";
import type { Gateway } from "../../gateway/gateway.js";
import type { NorthboundSink } from "../../gateway/northbound/sink.js";

export const CHROMIUM = process.env.LINLI_CHROMIUM ?? "/usr/bin/chromium";

/** Whether chromium is there; throws under .ci/run when it is not, warns otherwise. */
export function haveBrowser(testName: string): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.LINLI_REQUIRE_BROWSER)
    throw new Error(`${testName}: no chromium at ${CHROMIUM} (.ci/run installs it)`);
  console.warn(`${testName} SKIPPED: no chromium at ${CHROMIUM} (apt-get install chromium)`);
  return false;
}

export const SITE = "hp";
export const OPERATOR = { name: "duty", password: "duty-pw" };

/** A community centre of two households, a pendant and two door sensors, its console on `consolePort`. */
export function consoleSiteConfig(consolePort: number, extra: Partial<ConfigInput> = {}): ConfigInput {
  return {
    site: { id: SITE, name: "和平路社区服务中心", timezone: "Asia/Shanghai", locale: "zh-CN" },
    mqtt: { listeners: [{ host: "127.0.0.1", port: 0 }] },
    operators: [OPERATOR],
    households: [
      { id: "hh-101", name: "1号楼 101室 张阿姨" },
      // As examples/community.yaml writes a household: the resident apart from the flat.
      { id: "hh-203", name: "2号楼 203室", residentName: "李大爷" },
    ],
    devices: [
      { id: "pend-1", model: "ec200", password: "pw-pend-1", household: "hh-101", name: "张阿姨的呼叫器" },
      { id: "door-2", model: "ds10", password: "pw-door-2", household: "hh-203", name: "李大爷家门磁" },
      { id: "door-3", model: "ds10", password: "pw-door-3", household: "hh-101", name: "张阿姨家门磁" },
    ],
    log: { level: "silent" },
    metrics: { enabled: false },
    console: { enabled: true, host: "127.0.0.1", port: consolePort },
    ...extra,
  } as ConfigInput;
}

/** Headless chromium, as root in CI, reaching out of this machine for nothing (no update checks, no sync). */
export function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      ...extraArgs,
    ],
  });
}

/** An open alert as the gateway publishes it (docs/topics.md), for the console's view of a big site. */
export interface FakeAlert {
  topic: string;
  body: Record<string, unknown>;
}

const CODES: Record<number, string> = {
  1: "EMERGENCY_CALL",
  2: "TAMPER",
  3: "DOOR_HELD_OPEN",
  4: "BATTERY_LOW",
};

/** Alert `i` of priority `p` on device `dev-<i>`, raised `i` seconds after `base` (epoch ms). */
export function fakeAlert(i: number, p: 1 | 2 | 3 | 4, base = Date.now() - 3_600_000): FakeAlert {
  const code = CODES[p] as string;
  const deviceId = `dev-${i}`;
  return {
    topic: `linli/${SITE}/alerts/p${p}/${code}/${deviceId}`,
    body: {
      id: `fake-${i}`,
      code,
      priority: p,
      state: "active-unacknowledged",
      site: SITE,
      deviceId,
      model: "ds10",
      household: null,
      raisedAt: base + i * 1000,
      updatedAt: base + i * 1000,
      count: 1,
      rev: 1,
      householdName: `${1 + (i % 30)}号楼 ${100 + (i % 400)}室`,
      deviceName: `门磁 ${i}`,
      message: `测试告警 ${i}`,
    },
  };
}

/**
 * Publishes alert states into the gateway's own broker as its publisher does (QoS 1, retained
 * while open; an empty retained payload closes), the alerts' summary too (coalesced, as the
 * publisher's): thousands of open alerts in a second, no devices.
 */
export function publishAlerts(gw: Gateway, alerts: readonly FakeAlert[], closed = false): void {
  const sink = (gw.publisher as unknown as { sink: NorthboundSink }).sink;
  for (const a of alerts) {
    sink.publish(a.topic, closed ? "" : JSON.stringify(a.body), 1, true);
    if (closed) gw.publisher.summary.delete(a.topic);
    else
      gw.publisher.summary.set(a.topic, a.body.priority as number, a.body.id as string, a.body.rev as number);
  }
}
