/**
 * `list` (docs/topics.md "Which alerts are open") against a real gateway on 127.0.0.1 and a real
 * mosquitto as its upstream broker:
 * - a page goes back only where its request came from: a local console's to the gateway's own
 *   broker (before 0.13.34, ~20 KB a page was mirrored upstream too), one from upstream upstream;
 * - an account asking for pages faster than the bound is refused, counted, with when to ask again.
 * Needs mosquitto for the first part (.ci/run installs it); skipped without, outside CI.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Gateway } from "../gateway/gateway.js";
import { LIST_BURST } from "../gateway/list-budget.js";
import { freePort } from "./support/free-port.js";
import {
  connect,
  metricsGet,
  OPS,
  pendantMsg,
  SITE,
  startGateway,
  TestClient,
  testConfig,
} from "./support/harness.js";
import { haveMosquitto, startMosquitto } from "./support/mosquitto.js";
import { killGroup } from "./support/process-group.js";

const available = haveMosquitto();
if (!available && !process.env.CI) console.warn("list-bounds.e2e: mosquitto not installed; CI installs it");

const base = `linli/${SITE}/`;
const isList = (m: { topic: string; payload: Buffer }) =>
  m.topic.startsWith(`${base}ops/result/`) && m.payload.length > 0 && m.payload.toString().includes('"list"');

describe.skipIf(!available && !process.env.CI)("list answers go back where the request came from", () => {
  let dir = "";
  let broker: Awaited<ReturnType<typeof startMosquitto>> | null = null;
  let gw: Gateway | null = null;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "linli-list-route-"));
    const port = await freePort();
    broker = await startMosquitto(dir, port);
    gw = await startGateway({
      config: testConfig({
        northbound: { upstream: { url: `mqtt://127.0.0.1:${port}`, reconnectInitial: "100ms" } },
      }),
    });
    const up = new TestClient(
      await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, clientId: "up-console" }),
    );
    clients.push(up);
    await up.subscribe(`${base}#`);
    // The bridge is connected once the gateway's retained `online` is upstream.
    await up.waitFor((m) => m.topic === `${base}gateway/status` && m.payload.toString() === "online", 10_000);
    const local = await connect(gw, OPS.name, OPS.password);
    clients.push(local);
    await local.subscribe(`${base}#`);
    // One open P1, so that a page lists something.
    const pendant = await connect(gw, "p-1", "pw-p1");
    clients.push(pendant);
    await pendant.publish("devices/ec200/p-1/up", pendantMsg(1, "press"));
    await local.waitFor((m) => m.topic.startsWith(`${base}alerts/p1/`) && m.retain === false, 5000);
  }, 30_000);

  afterAll(async () => {
    for (const c of clients) await c.end().catch(() => {});
    await gw?.stop();
    if (broker) await killGroup(broker, 0, "SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  it("a local console's page is answered on the gateway's broker only, not mirrored upstream", async () => {
    const [up, local] = clients as [TestClient, TestClient];
    await local.publish(`${base}list/p1`, JSON.stringify({ ref: "local-page" }));
    const page = (await local.waitFor((m) => isList(m) && m.json().ref === "local-page")).json();
    expect(page).toMatchObject({ action: "list", ok: true, result: "listed", open: 1 });
    // A marker after it on the same topic, mirrored as every other result is: once it is upstream,
    // a mirrored page (published before it, same topic, in order) would be there too.
    await local.publish(`${base}ack/no-such-alert`, JSON.stringify({ ref: "marker-local" }));
    await up.waitFor(
      (m) => m.topic === `${base}ops/result/${OPS.name}` && m.json().ref === "marker-local",
      10_000,
    );
    expect(up.messages.filter(isList)).toEqual([]);
  });

  it("a page asked from upstream is answered upstream only, not on the gateway's broker", async () => {
    const [up, local] = clients as [TestClient, TestClient];
    await up.publish(`${base}list/p1`, JSON.stringify({ ref: "upstream-page" }));
    const page = (
      await up.waitFor((m) => m.topic === `${base}ops/result/upstream` && isList(m), 10_000)
    ).json();
    expect(page).toMatchObject({ ref: "upstream-page", ok: true, open: 1 });
    expect((page.alerts as unknown[]).length).toBe(1);
    await up.publish(`${base}ack/no-such-alert`, JSON.stringify({ ref: "marker-upstream" }));
    await local.waitFor(
      (m) => m.topic === `${base}ops/result/upstream` && m.json().ref === "marker-upstream",
      10_000,
    );
    expect(local.messages.filter((m) => isList(m) && m.topic === `${base}ops/result/upstream`)).toEqual([]);
  });
});

describe("list is bounded per account (0.13.34)", () => {
  let gw: Gateway | null = null;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(async () => {
    for (const c of clients) await c.end().catch(() => {});
    await gw?.stop();
  });

  it("refuses pages beyond the bound, counted, in the site's language, with when to ask again; another account is not refused", async () => {
    const g = gw as Gateway;
    const ops = await connect(g, OPS.name, OPS.password);
    const ops2 = await connect(g, "ops2", "ops2-pw");
    clients.push(ops, ops2);
    await ops.subscribe(`${base}ops/result/${OPS.name}`);
    await ops2.subscribe(`${base}ops/result/ops2`);
    const n = LIST_BURST + 20;
    // A console in a loop: every request at once.
    await Promise.all(
      Array.from({ length: n }, (_, i) => ops.publish(`${base}list/p4`, JSON.stringify({ ref: `r${i}` }))),
    );
    for (let end = Date.now() + 10_000; ops.messages.filter(isList).length < n && Date.now() < end; )
      await new Promise((r) => setTimeout(r, 20));
    const answers = ops.messages.filter(isList).map((m) => m.json());
    expect(answers.length).toBe(n);
    const refused = answers.filter((a) => a.ok === false);
    const listed = answers.filter((a) => a.ok === true);
    // The burst, and the odd page refilled while they came in (2 a second).
    expect(listed.length).toBeGreaterThanOrEqual(LIST_BURST);
    expect(listed.length).toBeLessThan(LIST_BURST + 10);
    expect(refused.length).toBe(n - listed.length);
    const r = refused[0] as Record<string, unknown>;
    expect(r).toMatchObject({ action: "list", target: "p4", reason: "rate-limited", result: null });
    expect(r.retryAfterMs).toBeGreaterThan(0);
    expect(r.retryAfterMs).toBeLessThanOrEqual(1000);
    expect(r.message).toMatch(/^查询未结束告警过于频繁，请 \d+ 秒后再试$/);
    expect(r.detail).toMatch(/too many list requests/);
    expect(g.counters.rejected("operator", "rate-limited")).toBe(refused.length);
    const metrics = await metricsGet(g, "/metrics");
    expect(metrics.body).toMatch(
      new RegExp(`linli_rejections_total\\{[^}]*reason="rate-limited"[^}]*\\} ${refused.length}`),
    );
    // Another account has its own bound.
    await ops2.publish(`${base}list/p4`, JSON.stringify({ ref: "other" }));
    const other = (await ops2.waitFor((m) => isList(m) && m.json().ref === "other")).json();
    expect(other.ok).toBe(true);
    // Asked again once the time it was given has passed: answered.
    await new Promise((res) => setTimeout(res, (r.retryAfterMs as number) + 50));
    await ops.publish(`${base}list/p4`, JSON.stringify({ ref: "later" }));
    const later = (await ops.waitFor((m) => isList(m) && m.json().ref === "later")).json();
    expect(later.ok).toBe(true);
  });
});
