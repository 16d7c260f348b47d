/**
 * The ISA-18.2 alert lifecycle through real MQTT (embedded aedes, real
 * clients) on gateway time (FakeClock): flood, a chattering DS-10 tamper,
 * a shelved alert returning, P1 escalation stopping on ack, out of service,
 * away mode and quiet hours. Every transition is checked on the events topic too.
 */
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { FakeClock } from "../core/clock.js";
import type { ConfigInput } from "../gateway/config/schema.js";
import type { Gateway } from "../gateway/gateway.js";
import { createLogger, type Logger } from "../gateway/log.js";
import {
  connect,
  doorMsg,
  OPS,
  pendantMsg,
  type Received,
  SITE,
  sleep,
  startGateway,
  type TestClient,
  testConfig,
} from "./support/harness.js";

const S = 1000;
const MIN = 60 * S;
const HOUR = 60 * MIN;
const EVENTS = `linli/${SITE}/alerts/events`;
const FLOOD = `linli/${SITE}/alerts/flood`;
const RESULT = `linli/${SITE}/ops/result/${OPS.name}`;

const doors = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    id: `d-${i + 1}`,
    model: "ds10" as const,
    password: `pw-d${i + 1}`,
    household: "hh-1",
  }));

/** A household with the names the alert messages use, and the operator results too. */
const NAMED = { id: "hh-1", name: "1号楼 101室", residentName: "张阿姨" };
const DOOR = { id: "d-1", model: "ds10" as const, password: "pw-d1", household: "hh-1", holdOpenTime: "60s" };

describe("alert lifecycle over real MQTT (fake clock)", () => {
  let gw: Gateway;
  let clock: FakeClock;
  let ops: TestClient;
  const clients: TestClient[] = [];
  const seqs = new Map<string, number>();

  async function start(extra: Partial<ConfigInput> = {}, logger?: Logger) {
    clock = new FakeClock();
    gw = await startGateway({ clock, config: testConfig(extra), ...(logger ? { logger } : {}) });
    ops = await connect(gw, OPS.name, OPS.password);
    await ops.subscribe(`linli/${SITE}/#`);
    clients.push(ops);
  }

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.end()));
    seqs.clear();
    await gw.stop();
  });

  async function device(id: string, pw: string) {
    const c = await connect(gw, id, pw);
    clients.push(c);
    return c;
  }

  const nextSeq = (id: string) => {
    const n = (seqs.get(id) ?? 0) + 1;
    seqs.set(id, n);
    return n;
  };

  /** Publishes and waits until the gateway has processed it (its telemetry is out). */
  async function send(c: TestClient, deviceId: string, payload: string) {
    const model = deviceId.startsWith("p-") ? "ec200" : "ds10";
    const topic = `linli/${SITE}/telemetry/${model}/${deviceId}`;
    const before = ops.messages.filter((m) => m.topic === topic).length;
    await c.publish(`devices/${model}/${deviceId}/up`, payload);
    await ops.waitFor(() => ops.messages.filter((m) => m.topic === topic).length > before);
  }

  const door = (c: TestClient, id: string, tamper: boolean) =>
    send(c, id, doorMsg(nextSeq(id), "closed", { tamper }));
  const press = (c: TestClient, id: string) => send(c, id, pendantMsg(nextSeq(id), "press"));

  const alertsOn = (suffix: string): Received[] =>
    ops.messages.filter(
      (m) => m.topic.includes("/alerts/p") && m.topic.endsWith(suffix) && m.payload.length > 0,
    );
  const events = (pred: (e: Record<string, unknown>) => boolean = () => true) =>
    ops.messages
      .filter((m) => m.topic === EVENTS)
      .map((m) => m.json())
      .filter(pred);

  async function request(topic: string, body: object): Promise<Record<string, unknown>> {
    const before = ops.messages.filter((m) => m.topic === RESULT).length;
    await ops.publish(`linli/${SITE}/${topic}`, JSON.stringify(body));
    await ops.waitFor(() => ops.messages.filter((m) => m.topic === RESULT).length > before);
    return ops.messages
      .filter((m) => m.topic === RESULT)
      .at(-1)!
      .json();
  }

  /** Moves gateway time, then lets the broker deliver what the timers published. */
  async function advance(ms: number) {
    clock.advance(ms);
    await sleep(40);
  }

  it("a flood: more than 10 new alerts in 10 minutes is published (retained); P3/P4 wait, P1 does not", async () => {
    const warnings: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        for (const l of String(chunk).split("\n").filter(Boolean)) warnings.push(JSON.parse(l).msg);
        cb();
      },
    });
    await start(
      {
        devices: [...doors(12), { id: "p-1", model: "ec200", password: "pw-p1", household: "hh-1" }],
        alerts: { escalation: { p2: 0 } },
      },
      createLogger({ level: "warn", format: "json", destination: sink }),
    );
    const initial = await ops.waitFor((m) => m.topic === FLOOD);
    expect(initial.json()).toMatchObject({ state: "normal" });
    expect(initial.retain).toBe(true);
    const sensors: TestClient[] = [];
    for (let i = 1; i <= 12; i++) sensors.push(await device(`d-${i}`, `pw-d${i}`));
    for (let i = 1; i <= 11; i++) await door(sensors[i - 1]!, `d-${i}`, true);
    const flood = await ops.waitFor((m) => m.topic === FLOOD && m.json().state === "flood");
    expect(flood.json()).toMatchObject({ state: "flood", newAlerts10m: 11 });
    // The log warns when the site is flooded, not at the start's announcement of a normal state.
    expect(warnings.filter((m) => m.startsWith("alert flood"))).toEqual(["alert flood: flood"]);

    // A low battery (P4) during the flood waits; an emergency call (P1) goes straight through.
    await send(sensors[11]!, "d-12", doorMsg(nextSeq("d-12"), "closed", { bat: 5 }));
    const pendant = await device("p-1", "pw-p1");
    await press(pendant, "p-1");
    expect(alertsOn("/EMERGENCY_CALL/p-1")).toHaveLength(1);
    expect(alertsOn("/BATTERY_LOW/d-12")).toHaveLength(0);

    // A console connecting now opens in its flood view (retained).
    const late = await connect(gw, "ops2", "ops2-pw");
    clients.push(late);
    await late.subscribe(FLOOD);
    expect((await late.waitFor((m) => m.topic === FLOOD)).json().state).toBe("flood");

    // Ten quiet minutes: fewer than 5 new alerts in the window ends it; the held P4 is published.
    await advance(10 * MIN + 10 * S);
    await ops.waitFor((m) => m.topic === FLOOD && m.json().state === "normal");
    const released = await ops.waitFor((m) => m.topic.endsWith("/BATTERY_LOW/d-12"));
    expect(released.json()).toMatchObject({ transition: "flood-released", state: "active-unacknowledged" });
  });

  it("a chattering DS-10 tamper is reported once and held until it has been quiet for a minute", async () => {
    await start({ alerts: { escalation: { p2: 0 } } });
    const d = await device("d-1", "pw-d1");
    for (let i = 0; i < 3; i++) {
      await door(d, "d-1", true);
      await advance(5 * S);
      await door(d, "d-1", false);
      await advance(5 * S);
    }
    // The third raise made it chattering; the clear after it was already held.
    expect(alertsOn("/TAMPER/d-1").map((m) => m.json().transition)).toEqual([
      "raised",
      "cleared",
      "reactivated",
      "cleared",
      "chattering",
    ]);
    expect(alertsOn("/TAMPER/d-1").at(-1)?.json()).toMatchObject({ chattering: true });
    for (let i = 0; i < 6; i++) {
      await door(d, "d-1", i % 2 === 0);
      await advance(5 * S);
    }
    expect(alertsOn("/TAMPER/d-1")).toHaveLength(5);
    expect(events((e) => e.code === "TAMPER" && e.transition === "chattering")).toHaveLength(1);
    // Last report: tamper false. A quiet minute later its current state is published once.
    await advance(61 * S);
    const ended = await ops.waitFor(
      (m) => m.topic.endsWith("/TAMPER/d-1") && m.json().transition === "chattering-ended",
    );
    expect(ended.json()).toMatchObject({ state: "cleared-unacknowledged", chattering: false });
    expect(events((e) => e.transition === "chattering-ended")).toHaveLength(1);
  });

  it("a shelved alert comes back when the time is up; P1 cannot be shelved", async () => {
    await start({ site: { id: SITE, timezone: "Asia/Shanghai" }, alerts: { escalation: { p2: 0, p1: 0 } } });
    const d = await device("d-1", "pw-d1");
    const p = await device("p-1", "pw-p1");
    await door(d, "d-1", true);
    const tamper = alertsOn("/TAMPER/d-1")[0]!.json();

    const ok = await request(`shelve/${tamper.id}`, {
      by: "Wang Li",
      duration: "30m",
      reason: "cover loose",
    });
    expect(ok).toMatchObject({ action: "shelve", target: tamper.id, ok: true, result: "shelved" });
    // The operator reads the end on the site's clock (09:30 UTC is 17:30 in Shanghai), in the
    // site's language; `detail` keeps UTC for machines.
    expect(ok).toMatchObject({
      detail: "until 2026-01-05T09:30:00.000Z",
      message: "已搁置：住户 hh-1 的门磁 d-1，设备外壳被打开，至 2026-01-05 17:30",
    });
    const shelved = await ops.waitFor(
      (m) => m.topic.endsWith("/TAMPER/d-1") && m.json().transition === "shelved",
    );
    expect(shelved.json()).toMatchObject({
      suppression: "shelved",
      shelvedBy: "Wang Li",
      shelveReason: "cover loose",
      shelvedUntil: clock.now() + 30 * MIN,
    });
    expect(events((e) => e.transition === "shelved")[0]).toMatchObject({
      alertId: tamper.id,
      from: "active-unacknowledged",
      to: "shelved",
      by: "Wang Li",
      reason: "cover loose",
    });

    // While shelved, the sensor's changes are not annunciated.
    await door(d, "d-1", false);
    await door(d, "d-1", true);
    expect(alertsOn("/TAMPER/d-1")).toHaveLength(2);

    await advance(30 * MIN + S);
    const back = await ops.waitFor(
      (m) => m.topic.endsWith("/TAMPER/d-1") && m.json().transition === "shelve-expired",
    );
    expect(back.json()).toMatchObject({ state: "active-unacknowledged", suppression: null, id: tamper.id });
    // Its shelving has ended: unshelving it is refused, naming it (the id stays in `detail`).
    expect(await request(`unshelve/${tamper.id}`, {})).toMatchObject({
      ok: false,
      reason: "not-shelved",
      detail: `${tamper.id} is not shelved`,
      message: "未被搁置：住户 hh-1 的门磁 d-1，设备外壳被打开",
    });

    await press(p, "p-1");
    const call = alertsOn("/EMERGENCY_CALL/p-1")[0]!.json();
    const refused = await request(`shelve/${call.id}`, { duration: "10m" });
    expect(refused).toMatchObject({ ok: false, reason: "p1-not-shelvable" });
    expect(gw.counters.rejected("operator", "p1-not-shelvable")).toBe(1);
    const tooLong = await request(`shelve/${tamper.id}`, { duration: "9h" });
    expect(tooLong).toMatchObject({ ok: false, reason: "shelve-too-long" });
    const bad = await request(`shelve/${tamper.id}`, { reason: "no duration" });
    expect(bad).toMatchObject({ ok: false, reason: "bad-request" });
  });

  it("an unacknowledged P1 escalates at 60 s and again at growing intervals; an ack stops it", async () => {
    await start({ households: [NAMED, { id: "hh-2" }] });
    const p = await device("p-1", "pw-p1");
    await press(p, "p-1");
    const call = alertsOn("/EMERGENCY_CALL/p-1")[0]!.json();
    const topic = `linli/${SITE}/escalations/p1/EMERGENCY_CALL/p-1`;
    await advance(59 * S);
    expect(ops.messages.filter((m) => m.topic === topic)).toHaveLength(0);
    await advance(2 * S);
    const first = await ops.waitFor((m) => m.topic === topic);
    expect(first.retain).toBe(false);
    expect(first.json()).toMatchObject({ id: call.id, code: "EMERGENCY_CALL", escalation: { level: 1 } });
    expect(
      (first.json().escalation as { unacknowledgedForMs: number }).unacknowledgedForMs,
    ).toBeGreaterThanOrEqual(60 * S);
    await advance(120 * S);
    await ops.waitFor((m) => m.topic === topic && (m.json().escalation as { level: number }).level === 2);
    expect(events((e) => e.transition === "escalated")).toHaveLength(2);

    // The call window has ended (cleared-unacknowledged): the ack closes it.
    expect(await request(`ack/${call.id}`, { by: "Wang Li" })).toMatchObject({
      ok: true,
      result: "closed",
      message: "已确认，告警已结束：1号楼 101室 张阿姨的紧急呼叫器 p-1，紧急呼叫",
    });
    await advance(30 * MIN);
    expect(ops.messages.filter((m) => m.topic === topic)).toHaveLength(2);
  });

  it("out of service: alerts held, no DEVICE_LOST; back in service publishes them and re-evaluates", async () => {
    await start({
      alerts: { escalation: { p2: 0 } },
      households: [NAMED, { id: "hh-2" }],
      devices: [
        { id: "p-1", model: "ec200", password: "pw-p1", household: "hh-1" },
        { ...DOOR, name: "入户门磁", location: "入户门" },
      ],
    });
    const d = await device("d-1", "pw-d1");
    await door(d, "d-1", false);
    const out = await request("service/d-1", { by: "fitter", inService: false, reason: "replacing battery" });
    // Named as the alert messages name it: the household, its resident, the device and where it is.
    expect(out).toMatchObject({
      ok: true,
      result: "out-of-service",
      message: "已停用：1号楼 101室 张阿姨的入户门磁（入户门）",
    });
    await door(d, "d-1", true);
    expect(alertsOn("/TAMPER/d-1")).toHaveLength(0);
    // Silent for longer than 2 heartbeats (1 h) + 60 s: lost, but no DEVICE_LOST while out of service.
    await advance(2 * HOUR + 2 * MIN);
    await ops.waitFor(
      (m) => m.topic === `linli/${SITE}/devices/d-1/status` && m.payload.toString() === "lost",
    );
    expect(alertsOn("/DEVICE_LOST/d-1")).toHaveLength(0);

    const back = await request("service/d-1", { by: "fitter", inService: true });
    expect(back).toMatchObject({
      ok: true,
      result: "in-service",
      message: "已恢复使用：1号楼 101室 张阿姨的入户门磁（入户门）（1 条未结束告警）",
    });
    const tamper = await ops.waitFor((m) => m.topic.endsWith("/TAMPER/d-1"));
    expect(tamper.json()).toMatchObject({ transition: "in-service", state: "active-unacknowledged" });
    const lost = await ops.waitFor((m) => m.topic.endsWith("/DEVICE_LOST/d-1"));
    expect(lost.json()).toMatchObject({ state: "active-unacknowledged" });

    expect(await request("service/nope", { inService: false })).toMatchObject({
      ok: false,
      reason: "unknown-device",
    });
    expect(await request("service/d-1", { inService: true })).toMatchObject({
      ok: false,
      reason: "already-in-service",
      detail: "d-1 is already in service",
      message: "1号楼 101室 张阿姨的入户门磁（入户门）已在使用中",
    });
    // The refusal in the site's language (site.locale, zh-CN by default), beside the English detail.
    expect(await request("service/nope", { inService: false })).toMatchObject({
      detail: "no device nope",
      message: "没有设备 nope",
    });
  });

  it("away mode pauses welfare checks until the resident is back; the next activity ends it", async () => {
    await start({
      households: [NAMED, { id: "hh-2", welfare: { enabled: false } }],
      devices: [
        { id: "p-1", model: "ec200", password: "pw-p1", household: "hh-1", heartbeatInterval: "12h" },
      ],
      alerts: { welfarePeriod: "24h", escalation: { p2: 0 } },
    });
    const p = await device("p-1", "pw-p1");
    const set = await request("away/hh-1", { by: "daughter", away: true });
    expect(set).toMatchObject({
      ok: true,
      result: "away",
      detail: null,
      message: "1号楼 101室 张阿姨已设为外出，关怀检查暂停至住户回家",
    });
    // Retained: a console connecting later sees the household is away.
    const late = await connect(gw, "ops2", "ops2-pw");
    clients.push(late);
    await late.subscribe(`linli/${SITE}/households/+/monitoring`);
    const monitoring = await late.waitFor((m) => m.topic === `linli/${SITE}/households/hh-1/monitoring`);
    expect(monitoring.retain).toBe(true);
    expect(monitoring.json()).toMatchObject({ household: "hh-1", state: "away", by: "daughter" });
    // Two days of heartbeats only: no welfare check while away.
    for (let h = 0; h < 48; h += 6) {
      await advance(6 * HOUR);
      await send(p, "p-1", pendantMsg(nextSeq("p-1"), null));
    }
    expect(alertsOn("/WELFARE_CHECK/hh-1")).toHaveLength(0);
    // Back: a button event (here a cancel with no call open) is activity; monitoring resumes.
    await send(p, "p-1", pendantMsg(nextSeq("p-1"), "cancel"));
    await ops.waitFor(
      (m) => m.topic === `linli/${SITE}/households/hh-1/monitoring` && m.json().state === "monitored",
    );
    for (let h = 0; h < 24; h += 6) {
      await advance(6 * HOUR);
      await send(p, "p-1", pendantMsg(nextSeq("p-1"), null));
    }
    await advance(MIN);
    // The check's timer fired in the gateway; its alert crosses the broker to the console (40 ms
    // of advance() was seen too short on a loaded machine).
    await ops.waitFor((m) => m.topic.endsWith("/WELFARE_CHECK/hh-1") && m.payload.length > 0, 10_000);
    expect(alertsOn("/WELFARE_CHECK/hh-1")).toHaveLength(1);

    expect(await request("away/hh-9", { away: true })).toMatchObject({
      ok: false,
      reason: "unknown-household",
    });
    expect(await request("away/hh-1", { away: true, until: "yesterday" })).toMatchObject({
      ok: false,
      reason: "bad-request",
    });
  });

  it("away until a time: monitoring resumes by itself then", async () => {
    await start({
      site: { id: SITE, timezone: "Asia/Shanghai", locale: "en" },
      devices: [{ id: "p-1", model: "ec200", password: "pw-p1", household: "hh-1", heartbeatInterval: "1h" }],
      alerts: { welfarePeriod: "24h", escalation: { p2: 0 } },
    });
    const until = new Date(clock.now() + 3 * HOUR).toISOString();
    // 12:00 UTC is 20:00 in Shanghai; an English site reads English.
    expect(await request("away/hh-1", { away: true, until })).toMatchObject({
      ok: true,
      result: "away",
      detail: "until 2026-01-05T12:00:00.000Z",
      message: "away (household hh-1): welfare checks paused until 2026-01-05 20:00",
    });
    await advance(3 * HOUR + S);
    const m = await ops.waitFor(
      (x) => x.topic === `linli/${SITE}/households/hh-1/monitoring` && x.json().state === "monitored",
    );
    expect(m.json()).toMatchObject({ by: "gateway" });
  });

  it("a welfare check due in quiet hours is raised when they end", async () => {
    // FakeClock starts 2026-01-05 09:00 UTC: due the next day at 09:00, inside 08:00-10:00.
    await start({
      site: { id: SITE, timezone: "UTC" },
      households: [{ id: "hh-1", welfare: { quietHours: "08:00-10:00" } }],
      devices: [
        { id: "p-1", model: "ec200", password: "pw-p1", household: "hh-1", heartbeatInterval: "12h" },
      ],
      alerts: { welfarePeriod: "24h", escalation: { p2: 0 } },
    });
    const p = await device("p-1", "pw-p1");
    await send(p, "p-1", pendantMsg(nextSeq("p-1"), null));
    await advance(24 * HOUR + MIN);
    expect(alertsOn("/WELFARE_CHECK/hh-1")).toHaveLength(0);
    await advance(58 * MIN);
    expect(alertsOn("/WELFARE_CHECK/hh-1")).toHaveLength(0);
    await advance(2 * MIN);
    const w = await ops.waitFor((m) => m.topic.endsWith("/WELFARE_CHECK/hh-1"));
    expect(new Date(w.json().raisedAt as number).toISOString().slice(11, 16)).toBe("10:00");
    expect(w.json().detail).toMatchObject({ deferredByQuietHours: true });
  });
});
