/**
 * A live reload, then a restart (a crash or a power cut right after it, or a start with the edited
 * file): the restarted gateway runs as the reloaded one did (docs/reload.md, docs/durability.md).
 * Two gateways in turn on one store, real MQTT clients, gateway time on a FakeClock.
 */
import { describe, expect, it } from "vitest";
import { FakeClock } from "../core/clock.js";
import { validateConfig } from "../gateway/config/load.js";
import type { ConfigInput } from "../gateway/config/schema.js";
import type { Gateway } from "../gateway/gateway.js";
import { MemoryStore } from "../gateway/state/store.js";
import {
  doorMsg,
  gatewaysInTurn,
  OPS,
  pendantMsg,
  SITE,
  sleep,
  startGateway,
  testConfig,
} from "./support/harness.js";

const S = 1000;
const MIN = 60 * S;
const ALERTS = `linli/${SITE}/alerts/`;

/** The harness's site (P1 escalating after 2 min, P2 after 5), changed by `change`. */
function site(change: (c: ConfigInput) => void = () => {}): ConfigInput {
  const c = testConfig({ alerts: { escalation: { p1: "2m", p2: "5m" } } });
  change(c);
  return c;
}

describe("a reload, then a restart", () => {
  const { start, client, adopt, stop } = gatewaysInTurn();

  /** p-1's press, seen by a console: the open call, and the console. */
  async function press(gw: Gateway) {
    const ops = await client(gw, OPS.name, OPS.password);
    await ops.subscribe(`${ALERTS}#`);
    const p1 = await client(gw, "p-1", "pw-p1");
    await p1.publish("devices/ec200/p-1/up", pendantMsg(7, "press"));
    const call = (await ops.waitFor((m) => m.topic === `${ALERTS}p1/EMERGENCY_CALL/p-1`)).json();
    return { call, ops };
  }

  const shorter = () => site((c) => (c.alerts = { escalation: { p1: "30s", p2: "5m" } }));

  it("a P1 escalation shortened by a reload is not put back to the old time by a restart", async () => {
    const store = new MemoryStore();
    const clock = new FakeClock();
    const a = await start(store, clock);
    const { call, ops: desk } = await press(a);
    expect(call.escalationNextAt).toBe((call.raisedAt as number) + 2 * MIN);
    clock.advance(10 * S);
    expect((await a.reload(validateConfig(shorter(), "site.yaml"))).result).toBe("applied");
    expect(a.engine.byAlertId(call.id as string)?.escalationNextAt).toBe((call.raisedAt as number) + 30 * S);
    // The console is shown the new time at once, under the next rev, with the same transition.
    const shown = (
      await desk.waitFor((m) => m.topic === `${ALERTS}p1/EMERGENCY_CALL/p-1` && m.json().rev !== call.rev)
    ).json();
    expect(shown).toMatchObject({
      id: call.id,
      rev: (call.rev as number) + 1,
      transition: call.transition,
      escalationNextAt: (call.raisedAt as number) + 30 * S,
    });
    // A power cut now; the gateway comes back with the file it had reloaded.
    await stop(a);

    const b = adopt(await startGateway({ clock, store, config: shorter() }));
    const restored = b.engine.byAlertId(call.id as string);
    expect(restored?.escalationNextAt).toBe((call.raisedAt as number) + 30 * S);
    const ops = await client(b, OPS.name, OPS.password);
    await ops.subscribe(`linli/${SITE}/escalations/#`);
    clock.advance(25 * S);
    const esc = (await ops.waitFor((m) => m.topic.includes("/escalations/p1/EMERGENCY_CALL/p-1"))).json();
    expect(esc.id).toBe(call.id);
  });

  it("a household may not take a device's id: a reload adding one is refused, the device's call stays open", async () => {
    const store = new MemoryStore();
    const clock = new FakeClock();
    const a = await start(store, clock);
    const { call } = await press(a);
    // Alerts are kept per subject id: applied, removing that household again closed p-1's call.
    const clash = site((c) => c.households?.push({ id: "p-1" }));
    const r = await a.reload(() => validateConfig(clash, "site.yaml"));
    expect(r.result).toBe("refused");
    expect(r.result === "refused" && r.message).toMatch(/devices\[0\]\.id: "p-1" is also a household id/);
    expect((await a.reload(validateConfig(site(), "site.yaml"))).result).toBe("applied");
    expect(a.engine.byAlertId(call.id as string)?.state).toBe("active-unacknowledged");
  });

  it("a welfare period a reload started runs on from the reload after a restart, not from older activity", async () => {
    const store = new MemoryStore();
    const clock = new FakeClock();
    const quiet = (enabled: boolean) =>
      site((c) => (c.households = [{ id: "hh-1", welfare: { enabled, period: "2h" } }, { id: "hh-2" }]));
    const a = adopt(await startGateway({ clock, store, config: quiet(false) }));
    const d1 = await client(a, "d-1", "pw-d1");
    await d1.publish("devices/ds10/d-1/up", doorMsg(1, "open"));
    await sleep(50);
    const h1 = () => a.registry.households.get("hh-1");
    expect(h1()?.lastActivity).toBe(clock.now());
    clock.advance(90 * MIN);
    // Welfare checks switched on: the first period runs from now (docs/reload.md).
    expect((await a.reload(validateConfig(quiet(true), "site.yaml"))).result).toBe("applied");
    const due = h1()?.welfareTimer.deadline;
    expect(due).toBe(clock.now() + 2 * 60 * MIN);
    await stop(a);

    const b = adopt(await startGateway({ clock, store, config: quiet(true) }));
    expect(b.registry.households.get("hh-1")?.welfareTimer.deadline).toBe(due);
    clock.advance(40 * MIN); // past the door's opening + 2 h
    await sleep(20);
    expect(b.engine.find("hh-1", "WELFARE_CHECK")).toBeUndefined();
  });

  it("a welfare period that away mode's end started runs on from that end after a restart", async () => {
    const store = new MemoryStore();
    const clock = new FakeClock();
    const a = await start(store, clock);
    const d1 = await client(a, "d-1", "pw-d1");
    await d1.publish("devices/ds10/d-1/up", doorMsg(1, "open"));
    await sleep(50);
    const h1 = a.registry.households.get("hh-1");
    if (!h1) throw new Error("hh-1 missing");
    a.supervisor.setAway(h1, true, "ops", null, "hospital");
    clock.advance(30 * 60 * MIN); // away longer than the 24 h period
    a.supervisor.setAway(h1, false, "ops", null, "back home");
    const due = h1.welfareTimer.deadline;
    expect(due).toBe(clock.now() + 24 * 60 * MIN);
    await stop(a);

    const b = await start(store, clock);
    expect(b.registry.households.get("hh-1")?.welfareTimer.deadline).toBe(due);
    await sleep(20);
    expect(b.engine.find("hh-1", "WELFARE_CHECK")).toBeUndefined();
  });

  it("a reload while the gateway stops (a restart under way) is refused with a report, not thrown", async () => {
    const a = await start(new MemoryStore(), new FakeClock());
    const stopping = a.stop();
    // Before 2026-12-06 it threw: `linli reload` got no report and waited out its timeout.
    const r = await a.reload(validateConfig(shorter(), "site.yaml"));
    expect(r).toMatchObject({ result: "refused", message: expect.stringMatching(/stopping.*网关正在停止/s) });
    await stopping;
  });

  it("a welfare check open at a restart is not raised again: no change published, its detail kept", async () => {
    const store = new MemoryStore();
    const clock = new FakeClock(); // 09:00 UTC
    // Due at 10:00, in quiet hours: raised at their end, 10:30, "deferred by quiet hours".
    const hourly = site((c) => {
      c.households = [{ id: "hh-1" }, { id: "hh-2", welfare: { period: "1h", quietHours: "09:30-10:30" } }];
    });
    const a = adopt(await startGateway({ clock, store, config: hourly }));
    clock.advance(91 * MIN);
    await sleep(20);
    const raised = a.engine.find("hh-2", "WELFARE_CHECK");
    expect(raised?.detail).toMatchObject({ deferredByQuietHours: true });
    const { id, updatedAt } = raised ?? {};
    await stop(a);

    clock.advance(60 * MIN);
    const b = adopt(await startGateway({ clock, store, config: hourly }));
    const ops = await client(b, OPS.name, OPS.password);
    await ops.subscribe(`${ALERTS}p2/WELFARE_CHECK/hh-2`);
    // It fired once for this silent period; the next activity clears it and starts another.
    expect(b.registry.households.get("hh-2")?.welfareTimer.armed).toBe(false);
    for (let i = 0; i < 4; i++) {
      clock.advance(30 * MIN);
      await sleep(20);
    }
    const open = b.engine.find("hh-2", "WELFARE_CHECK");
    expect(open).toMatchObject({ id, updatedAt, detail: { deferredByQuietHours: true } });
    expect(ops.on("WELFARE_CHECK/hh-2").filter((m) => m.json().transition === "changed")).toHaveLength(0);
  });

  it("a household's open welfare check is closed at a start without it, with a household's reason", async () => {
    const store = new MemoryStore();
    const clock = new FakeClock();
    const hourly = site((c) => (c.households = [{ id: "hh-1" }, { id: "hh-2", welfare: { period: "1h" } }]));
    const a = adopt(await startGateway({ clock, store, config: hourly }));
    clock.advance(61 * MIN);
    await sleep(20);
    expect(a.engine.find("hh-2", "WELFARE_CHECK")).toBeDefined();
    // The crash came before the reload that removed the household was journaled (or it was edited
    // out while the gateway was stopped).
    await stop(a);
    const without = site((c) => {
      c.households = [{ id: "hh-1" }];
      c.devices = (c.devices ?? []).filter((d) => d.id !== "p-2");
    });
    const b = adopt(await startGateway({ clock, store, config: without }));
    expect(b.recovered?.orphans.get("hh-2")).toBe("household no longer in the configuration");
    expect(b.engine.find("hh-2", "WELFARE_CHECK")).toBeUndefined();
  });

  it("a start without a device or household deletes their retained status from the upstream mirror", async () => {
    const store = new MemoryStore();
    const clock = new FakeClock();
    // An upstream broker that is not there (port in this suite's range, nothing listening): the
    // journaled mirror is what it would be sent at the next connect.
    const upstream = { northbound: { upstream: { url: "mqtt://127.0.0.1:21999", reconnectInitial: "1h" } } };
    const a = adopt(await startGateway({ clock, store, config: site((c) => Object.assign(c, upstream)) }));
    const p2 = await client(a, "p-2", "pw-p2");
    await p2.publish("devices/ec200/p-2/up", pendantMsg(1, null));
    const h2 = a.registry.households.get("hh-2");
    if (!h2) throw new Error("hh-2 missing");
    a.supervisor.setAway(h2, true, "ops", null, "hospital");
    await sleep(50);
    const mirrored = (topic: string) =>
      (store.get(`upr/linli/${SITE}/${topic}`) as [number, string] | undefined)?.[1];
    expect(mirrored("devices/p-2/status")).toBe("online");
    expect(mirrored("households/hh-2/monitoring")).toContain('"away"');
    // A crash before the reload that removed them was journaled, or a file edited while stopped.
    await stop(a);
    const without = site((c) => {
      Object.assign(c, upstream);
      c.households = [{ id: "hh-1" }];
      c.devices = (c.devices ?? []).filter((d) => d.id !== "p-2");
    });
    adopt(await startGateway({ clock, store, config: without }));
    expect(mirrored("devices/p-2/status") ?? "").toBe("");
    expect(mirrored("households/hh-2/monitoring") ?? "").toBe("");
  });

  it("a device replaced by a reload (another model, the same id) does not inherit the old one's message rate", async () => {
    const store = new MemoryStore();
    const clock = new FakeClock();
    const a = await start(store, clock);
    const door = await client(a, "d-1", "pw-d1");
    // The door sensor spends its whole burst (DS-10: 120 messages, then 1 a second).
    await Promise.all(
      Array.from({ length: 125 }, (_, i) => door.publish("devices/ds10/d-1/up", doorMsg(i + 1, "closed"), 0)),
    );
    await sleep(100);
    expect(a.deviceRate.dropped).toBeGreaterThan(0);
    const dropped = a.deviceRate.dropped;
    const pendantD1 = site((c) => {
      c.devices = (c.devices ?? []).map((d) =>
        d.id === "d-1" ? { id: "d-1", model: "ec200", password: "pw-d1", household: "hh-1" } : d,
      );
    });
    expect((await a.reload(validateConfig(pendantD1, "site.yaml"))).result).toBe("applied");
    const pendant = await client(a, "d-1", "pw-d1");
    for (let seq = 1; seq <= 5; seq++) await pendant.publish("devices/ec200/d-1/up", pendantMsg(seq, null));
    await sleep(50);
    expect(a.deviceRate.dropped).toBe(dropped);
  });

  it("a start with the edited file times a call not yet escalated as a reload of it would", async () => {
    const store = new MemoryStore();
    const clock = new FakeClock();
    const a = await start(store, clock);
    const { call } = await press(a);
    await stop(a);

    clock.advance(10 * S);
    const b = adopt(await startGateway({ clock, store, config: shorter() }));
    expect(b.engine.byAlertId(call.id as string)?.escalationNextAt).toBe((call.raisedAt as number) + 30 * S);
    // Its time moved: the retained copy shows it under a new rev, never the old rev with another time.
    const ops = await client(b, OPS.name, OPS.password);
    await ops.subscribe(`${ALERTS}#`);
    const now = (await ops.waitFor((m) => m.topic === `${ALERTS}p1/EMERGENCY_CALL/p-1` && m.retain)).json();
    expect(now.escalationNextAt).toBe((call.raisedAt as number) + 30 * S);
    expect(now.rev as number).toBeGreaterThan(call.rev as number);
    await sleep(10);
  });
});
