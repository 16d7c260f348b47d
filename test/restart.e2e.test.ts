/**
 * A restart keeps what operators rely on (docs/durability.md): two gateways
 * in turn on one store, real MQTT clients, gateway time on a FakeClock. The
 * journal itself (files, fsync, damage) is tested in gateway/journal; the
 * process-level crash test is `npm run test:crash`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { FakeClock } from "../core/clock.js";
import { validateConfig } from "../gateway/config/load.js";
import { Gateway } from "../gateway/gateway.js";
import { createLogger } from "../gateway/log.js";
import { readAlertRecord } from "../gateway/state/alert-record.js";
import { readDeviceRecord } from "../gateway/state/recorder.js";
import { MemoryStore } from "../gateway/state/store.js";
import {
  connect,
  doorMsg,
  gatewaysInTurn,
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
const ALERTS = `linli/${SITE}/alerts/`;

describe("restart from the journal", () => {
  const { start, client, adopt, stop: stopGateway } = gatewaysInTurn();

  /** Latest retained state per alert topic, as a console that just connected sees it. */
  async function retainedAlerts(gw: Gateway): Promise<Map<string, Record<string, unknown>>> {
    const ops = await client(gw, OPS.name, OPS.password);
    await ops.subscribe(`${ALERTS}#`);
    await sleep(150);
    const out = new Map<string, Record<string, unknown>>();
    for (const m of ops.messages as Received[])
      if (m.retain && m.payload.length > 0 && !m.topic.endsWith("/events") && !m.topic.endsWith("/flood"))
        out.set(m.topic, m.json());
    return out;
  }

  it("keeps open alerts with their ids and states, acknowledgements, away mode and escalation times", async () => {
    const store = new MemoryStore();
    const clock = new FakeClock();
    const a = await start(store, clock);
    const p1 = await client(a, "p-1", "pw-p1");
    const p2 = await client(a, "p-2", "pw-p2");
    const ops = await client(a, OPS.name, OPS.password);
    await ops.subscribe(`linli/${SITE}/#`);
    await p1.publish("devices/ec200/p-1/up", pendantMsg(10, "press"));
    await p2.publish("devices/ec200/p-2/up", pendantMsg(20, "press"));
    const call1 = (await ops.waitFor((m) => m.topic === `${ALERTS}p1/EMERGENCY_CALL/p-1`)).json();
    const call2 = (await ops.waitFor((m) => m.topic === `${ALERTS}p1/EMERGENCY_CALL/p-2`)).json();
    await ops.publish(`linli/${SITE}/ack/${call2.id}`, JSON.stringify({ note: "on my way" }));
    await ops.waitFor((m) => m.topic.endsWith(`ops/result/${OPS.name}`) && m.json().target === call2.id);
    await ops.publish(`linli/${SITE}/away/hh-2`, JSON.stringify({ away: true, reason: "hospital" }));
    await ops.waitFor((m) => m.topic.endsWith(`ops/result/${OPS.name}`) && m.json().target === "hh-2");
    const before = await retainedAlerts(a);
    const nextAt = before.get(`${ALERTS}p1/EMERGENCY_CALL/p-1`)?.escalationNextAt as number;
    expect(nextAt).toBe((call1.raisedAt as number) + 2 * MIN);
    await stopGateway(a);

    clock.advance(30 * S);
    const b = await start(store, clock);
    const after = await retainedAlerts(b);
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [topic, was] of before) {
      const now = after.get(topic) as Record<string, unknown>;
      for (const field of ["id", "state", "count", "ackedBy", "ackNote", "rev", "escalationNextAt"])
        expect(now[field], `${topic} ${field}`).toEqual(was[field]);
    }
    expect(after.get(`${ALERTS}p1/EMERGENCY_CALL/p-2`)?.state).toBe("active-acknowledged");
    expect(b.supervisor.isAway("hh-2")).toBe(true);

    // The pendant never saw its PUBACK and sends the same press again: a duplicate, not a new call.
    const p1b = await client(b, "p-1", "pw-p1");
    await p1b.publish("devices/ec200/p-1/up", pendantMsg(10, "press"));
    const ops2 = await client(b, OPS.name, OPS.password);
    await ops2.subscribe(`linli/${SITE}/escalations/#`);
    await sleep(100);
    expect(b.engine.byAlertId(call1.id as string)?.count).toBe(1);

    // Escalation falls due when it would have without the restart.
    clock.advance(nextAt - clock.now() - S);
    await sleep(50);
    expect(ops2.on("/escalations/")).toHaveLength(0);
    clock.advance(2 * S);
    const esc = (await ops2.waitFor((m) => m.topic.includes("/escalations/p1/EMERGENCY_CALL/p-1"))).json();
    expect(esc.id).toBe(call1.id);
  });

  it("keeps a device out of service without an open alert on its retained service topic; back in service removes it", async () => {
    const SERVICE = `linli/${SITE}/devices/p-2/service`;
    const store = new MemoryStore();
    const clock = new FakeClock();
    const a = await start(store, clock);
    const ops = await client(a, OPS.name, OPS.password);
    await ops.subscribe(`linli/${SITE}/#`);
    await ops.publish(`linli/${SITE}/service/p-2`, JSON.stringify({ inService: false, reason: "battery" }));
    const out = await ops.waitFor((m) => m.topic === SERVICE);
    expect(out.json()).toEqual({
      device: "p-2",
      inService: false,
      by: OPS.name,
      account: OPS.name,
      since: clock.now(),
    });
    await stopGateway(a);

    // A console that connects after the restart reads it from the retained topic (journaled).
    clock.advance(30 * S);
    const b = await start(store, clock);
    const desk = await client(b, OPS.name, OPS.password);
    await desk.subscribe(`linli/${SITE}/devices/+/service`);
    const kept = await desk.waitFor((m) => m.topic === SERVICE && m.retain);
    expect(kept.json()).toEqual(out.json());

    await desk.publish(`linli/${SITE}/service/p-2`, JSON.stringify({ inService: true }));
    await desk.waitFor((m) => m.topic === SERVICE && m.payload.length === 0);
    const late = await client(b, OPS.name, OPS.password);
    await late.subscribe(`linli/${SITE}/devices/+/service`);
    await late.subscribe(`linli/${SITE}/gateway/status`);
    await late.waitFor((m) => m.topic.endsWith("/gateway/status"));
    expect(late.on("/service")).toHaveLength(0);
  });

  it("keeps the operator account of acknowledgements, shelving, out of service and away mode; older records read as null", async () => {
    for (const written of ["now", "before accounts were journaled"] as const) {
      const store = new MemoryStore();
      const clock = new FakeClock();
      const a = await start(store, clock);
      const p1 = await client(a, "p-1", "pw-p1");
      const d1 = await client(a, "d-1", "pw-d1");
      const ops = await client(a, OPS.name, OPS.password);
      await ops.subscribe(`linli/${SITE}/#`);
      const answered = (target: string) =>
        ops.waitFor((m) => m.topic.endsWith(`ops/result/${OPS.name}`) && m.json().target === target);
      await p1.publish("devices/ec200/p-1/up", pendantMsg(1, "press"));
      await d1.publish("devices/ds10/d-1/up", doorMsg(1, "closed", { tamper: true }));
      const call = (await ops.waitFor((m) => m.topic === `${ALERTS}p1/EMERGENCY_CALL/p-1`)).json();
      const tamper = (await ops.waitFor((m) => m.topic.includes("/TAMPER/d-1"))).json();
      await ops.publish(`linli/${SITE}/ack/${call.id}`, JSON.stringify({ by: "night" }));
      await answered(call.id as string);
      await ops.publish(
        `linli/${SITE}/shelve/${tamper.id}`,
        JSON.stringify({ by: "Wang Li", duration: "1h" }),
      );
      await answered(tamper.id as string);
      await ops.publish(`linli/${SITE}/service/p-2`, JSON.stringify({ by: "Li Ming", inService: false }));
      await answered("p-2");
      await ops.publish(`linli/${SITE}/away/hh-2`, JSON.stringify({ by: "daughter", away: true }));
      await answered("hh-2");
      await stopGateway(a);
      if (written !== "now")
        for (const [key, v] of [...store.entries()]) {
          // What the code before these fields wrote: the same records without them.
          // (An alert state is kept positional in memory: read as the record it is first.)
          const record = key.startsWith("alert/") ? readAlertRecord(v) : v;
          const { account, ackedByAccount, shelvedByAccount, outOfServiceByAccount, ...old } =
            record as Record<string, unknown>;
          store.put(key, old);
        }

      const b = await start(store, clock);
      const account = written === "now" ? OPS.name : null;
      expect(b.engine.byAlertId(call.id as string), written).toMatchObject({
        ackedBy: "night",
        ackedByAccount: account,
      });
      const shelved = b.engine.byAlertId(tamper.id as string);
      expect(shelved, written).toMatchObject({ shelvedBy: "Wang Li", shelvedByAccount: account });
      expect(b.supervisor.awayStatuses(), written).toEqual([
        expect.objectContaining({ household: "hh-2", by: "daughter", account }),
      ]);
      // A new alert of the device out of service takes the restored account.
      const p2 = await client(b, "p-2", "pw-p2");
      await p2.publish("devices/ec200/p-2/up", pendantMsg(1, "press"));
      const deadline = Date.now() + 3000;
      while (!b.engine.find("p-2", "EMERGENCY_CALL") && Date.now() < deadline) await sleep(5);
      expect(b.engine.find("p-2", "EMERGENCY_CALL"), written).toMatchObject({
        outOfServiceBy: "Li Ming",
        outOfServiceByAccount: account,
      });
      await stopGateway(b);
    }
  });

  /** A gateway on a fresh store, one press of p-1 (its EMERGENCY_CALL seen by a console), stopped. */
  /** A running gateway whose door sensor d-1 raised TAMPER, seen by an operator subscribed to everything. */
  async function tamperRaised() {
    const store = new MemoryStore();
    const clock = new FakeClock();
    const a = await start(store, clock);
    const d1 = await client(a, "d-1", "pw-d1");
    const ops = await client(a, OPS.name, OPS.password);
    await ops.subscribe(`linli/${SITE}/#`);
    await d1.publish("devices/ds10/d-1/up", doorMsg(1, "closed", { tamper: true }));
    const tamper = (await ops.waitFor((m) => m.topic.endsWith("/TAMPER/d-1"))).json();
    return { store, clock, a, d1, ops, tamper };
  }

  async function pressedAndStopped(seq: number) {
    const store = new MemoryStore();
    const clock = new FakeClock();
    const a = await start(store, clock);
    const p1 = await client(a, "p-1", "pw-p1");
    const ops = await client(a, OPS.name, OPS.password);
    await ops.subscribe(`${ALERTS}#`);
    const deviceBefore = store.get("dev/p-1");
    await p1.publish("devices/ec200/p-1/up", pendantMsg(seq, "press"));
    const call = (await ops.waitFor((m) => m.topic === `${ALERTS}p1/EMERGENCY_CALL/p-1`)).json();
    await stopGateway(a);
    return { store, clock, call, deviceBefore };
  }

  it("an escalation is in the retained alert, and a restart republishes it with the same rev", async () => {
    const store = new MemoryStore();
    const clock = new FakeClock();
    const a = await start(store, clock);
    const p1 = await client(a, "p-1", "pw-p1");
    const ops = await client(a, OPS.name, OPS.password);
    await ops.subscribe(`linli/${SITE}/#`);
    await p1.publish("devices/ec200/p-1/up", pendantMsg(7, "press"));
    const call = (await ops.waitFor((m) => m.topic === `${ALERTS}p1/EMERGENCY_CALL/p-1`)).json();
    clock.advance(2 * MIN + S);
    const esc = (await ops.waitFor((m) => m.topic.includes("/escalations/p1/EMERGENCY_CALL/p-1"))).json();
    // A console that connects now sees the escalation in the retained alert, under the escalation's rev.
    const before = (await retainedAlerts(a)).get(`${ALERTS}p1/EMERGENCY_CALL/p-1`) as Record<string, unknown>;
    expect(before.id).toBe(call.id);
    expect(before.escalationLevel).toBe(1);
    expect(before.transition).toBe("escalated");
    // The call window (60 s) ended before the escalation: the state is that of the last change.
    const states = ops.on(`${ALERTS}p1/EMERGENCY_CALL/p-1`).map((m) => m.json());
    const lastChange = states.filter((m) => m.transition !== "escalated").at(-1) as Record<string, unknown>;
    expect(lastChange.transition).toBe("cleared");
    expect(before.state).toBe(lastChange.state);
    expect(before.rev).toBe((lastChange.rev as number) + 1);
    expect(esc.rev).toBe(before.rev);
    expect(String(before.message)).toContain("第 1 次升级");
    await stopGateway(a);

    clock.advance(30 * S);
    const b = await start(store, clock);
    const after = (await retainedAlerts(b)).get(`${ALERTS}p1/EMERGENCY_CALL/p-1`) as Record<string, unknown>;
    for (const field of ["id", "state", "rev", "transition", "escalationLevel", "escalationNextAt"])
      expect(after[field], field).toEqual(before[field]);
  });

  it("an escalation that fell due while the gateway was down is published at start, not a tick later", async () => {
    const { store, clock, call } = await pressedAndStopped(3);

    clock.advance(3 * MIN); // the first escalation (2 min) fell due during the downtime
    const b = await start(store, clock);
    // Fired during start-up (the fake clock has not moved since): level 1, the next one 4 min after
    // it fell due (on schedule), not 4 min after the start.
    const restored = b.engine.byAlertId(call.id as string);
    expect(restored?.escalationLevel).toBe(1);
    expect(restored?.escalationNextAt).toBe((call.raisedAt as number) + 2 * MIN + 4 * MIN);
  });

  it("escalations that fell due during a long downtime are counted at the start, published once; the next one on schedule", async () => {
    const { store, clock, call } = await pressedAndStopped(3);
    const raisedAt = call.raisedAt as number;
    // Due at 2, 6 (2 + 4), 14 (6 + 8) and 29 (14 + 15, the cap) minutes; down until 20 minutes.
    clock.set(raisedAt + 20 * MIN);
    const b = await start(store, clock);
    const ops = await client(b, OPS.name, OPS.password);
    await ops.subscribe(`linli/${SITE}/escalations/#`);
    const restored = b.engine.byAlertId(call.id as string);
    expect(restored?.escalationLevel).toBe(3);
    expect(restored?.escalationNextAt).toBe(raisedAt + 29 * MIN);
    await sleep(100);
    clock.advance(9 * MIN - S);
    await sleep(50);
    expect(b.engine.byAlertId(call.id as string)?.escalationLevel).toBe(3);
    clock.advance(2 * S);
    await ops.waitFor((m) => m.json().escalationLevel === 4);
  });

  it("a shelving that ran out during the downtime: the alert is shown again as of its end, its escalations counted from then", async () => {
    const { store, clock, a, ops, tamper } = await tamperRaised();
    await ops.publish(`linli/${SITE}/shelve/${tamper.id}`, JSON.stringify({ duration: "5m" }));
    await ops.waitFor((m) => m.topic.endsWith(`ops/result/${OPS.name}`) && m.json().target === tamper.id);
    const shelvedUntil = clock.now() + 5 * MIN;
    await stopGateway(a);

    // P2 escalates 5 min after it is shown again, then 10 min later: due at shelvedUntil + 5 and
    // + 15 min; down until 20 min after the shelving's end.
    clock.set(shelvedUntil + 20 * MIN);
    const b = await start(store, clock);
    const restored = b.engine.byAlertId(tamper.id as string);
    expect(restored?.shelvedUntil).toBeNull();
    expect(restored?.unackSince).toBe(shelvedUntil);
    expect(restored?.escalationLevel).toBe(2);
    expect(restored?.escalationNextAt).toBe(shelvedUntil + 5 * MIN + 10 * MIN + 15 * MIN);
  });

  it("a wall clock set back across a restart does not put off a P1's escalation or a shelving's end by the jump", async () => {
    // An edge box without a real-time clock (fake-hwclock) or with a flat RTC battery comes back
    // from a power cut with its clock behind the time the gateway last ran at.
    const store = new MemoryStore();
    const clock = new FakeClock();
    const a = await start(store, clock);
    const p1 = await client(a, "p-1", "pw-p1");
    const d1 = await client(a, "d-1", "pw-d1");
    const ops = await client(a, OPS.name, OPS.password);
    await ops.subscribe(`linli/${SITE}/#`);
    await p1.publish("devices/ec200/p-1/up", pendantMsg(4, "press"));
    await d1.publish("devices/ds10/d-1/up", doorMsg(1, "closed", { tamper: true }));
    const call = (await ops.waitFor((m) => m.topic === `${ALERTS}p1/EMERGENCY_CALL/p-1`)).json();
    const tamper = (await ops.waitFor((m) => m.topic.includes("/TAMPER/d-1"))).json();
    await ops.publish(`linli/${SITE}/shelve/${tamper.id}`, JSON.stringify({ duration: "1h" }));
    await ops.waitFor((m) => m.topic.endsWith(`ops/result/${OPS.name}`) && m.json().target === tamper.id);
    const awayAt = clock.now();
    await ops.publish(
      `linli/${SITE}/away/hh-2`,
      JSON.stringify({ away: true, until: clock.now() + 120 * MIN }),
    );
    await ops.waitFor((m) => m.topic.endsWith(`ops/result/${OPS.name}`) && m.json().target === "hh-2");
    const before = (await retainedAlerts(a)).get(`${ALERTS}p1/EMERGENCY_CALL/p-1`) as Record<string, unknown>;
    expect(before.escalationNextAt).toBe(clock.now() + 2 * MIN);
    await stopGateway(a);

    const DAY = 24 * 60 * MIN;
    const behind = new FakeClock(clock.now() - DAY);
    const b = await start(store, behind);
    // The schedule runs on from where it stood at the stop, on the new clock.
    expect(b.engine.byAlertId(call.id as string)?.escalationNextAt).toBe(behind.now() + 2 * MIN);
    expect(b.engine.byAlertId(tamper.id as string)?.shelvedUntil).toBe(behind.now() + 60 * MIN);
    expect(b.supervisor.awayStatuses()).toEqual([
      expect.objectContaining({ household: "hh-2", since: awayAt - DAY, until: behind.now() + 120 * MIN }),
    ]);
    // Changed times are a new state: the next rev, journaled before it is published.
    const after = (await retainedAlerts(b)).get(`${ALERTS}p1/EMERGENCY_CALL/p-1`) as Record<string, unknown>;
    expect(after.id).toBe(call.id);
    expect(after.escalationNextAt).toBe(behind.now() + 2 * MIN);
    expect(after.rev).toBe((before.rev as number) + 1);
    const ops2 = await client(b, OPS.name, OPS.password);
    await ops2.subscribe(`linli/${SITE}/escalations/#`);
    behind.advance(2 * MIN + S);
    const esc = (await ops2.waitFor((m) => m.topic.includes("/escalations/p1/EMERGENCY_CALL/p-1"))).json();
    expect(esc.id).toBe(call.id);
    const nextAt = b.engine.byAlertId(call.id as string)?.escalationNextAt as number;
    await stopGateway(b);

    // Journaled as moved: a further restart on the same clock keeps the times.
    const c = await start(store, behind);
    expect(c.engine.byAlertId(call.id as string)?.escalationNextAt).toBe(nextAt);
    expect(c.engine.byAlertId(tamper.id as string)?.shelvedUntil).toBe(behind.now() - 2 * MIN - S + 60 * MIN);
  });

  describe("a device whose model changed (the same id, another device)", () => {
    /** d-1, a door sensor in the running site, is a pendant in the next one. */
    const pendantD1 = () => {
      const cfg = testConfig({ alerts: { escalation: { p1: "2m", p2: "5m" } } });
      cfg.devices = (cfg.devices ?? []).map((d) =>
        d.id === "d-1" ? { id: "d-1", model: "ec200", password: "pw-d1", household: "hh-1" } : d,
      );
      return cfg;
    };

    /** The door sensor's tamper (seq 5) raised an alert, seen by a console. */
    async function tampered(store: MemoryStore, clock: FakeClock) {
      const a = await start(store, clock);
      const d1 = await client(a, "d-1", "pw-d1");
      const ops = await client(a, OPS.name, OPS.password);
      await ops.subscribe(`${ALERTS}#`);
      await d1.publish("devices/ds10/d-1/up", doorMsg(5, "closed", { tamper: true }));
      const tamper = (await ops.waitFor((m) => m.topic.includes("/TAMPER/d-1"))).json();
      return { a, tamper };
    }

    /** The new pendant's first presses (seqs the door sensor used too) each raise a call. */
    async function pendantPresses(b: Gateway) {
      const ops = await client(b, OPS.name, OPS.password);
      await ops.subscribe(`${ALERTS}#`);
      const p = await client(b, "d-1", "pw-d1");
      await p.publish("devices/ec200/d-1/up", pendantMsg(5, "press"));
      const call = (await ops.waitFor((m) => m.topic === `${ALERTS}p1/EMERGENCY_CALL/d-1`)).json();
      expect(call.state).toBe("active-unacknowledged");
    }

    it("a restart with the new site file closes the old model's alerts and forgets its seqs", async () => {
      // What a power cut right after a reload that replaced the device leaves, or a site file
      // edited while the gateway was stopped.
      const store = new MemoryStore();
      const clock = new FakeClock();
      const { a, tamper } = await tampered(store, clock);
      await stopGateway(a);

      const b = adopt(await startGateway({ clock, store, config: pendantD1() }));
      const closed = b.engine.byAlertId(tamper.id as string);
      expect(closed === undefined || closed.state === "closed", "the door sensor's alert stays open").toBe(
        true,
      );
      expect(b.engine.find("d-1", "TAMPER")).toBeUndefined();
      expect([...(await retainedAlerts(b)).keys()].filter((t) => t.includes("/TAMPER/d-1"))).toEqual([]);
      await pendantPresses(b);
    });

    it("a reload that replaced it, then a restart: the new device's seqs are its own", async () => {
      const store = new MemoryStore();
      const clock = new FakeClock();
      const { a } = await tampered(store, clock);
      // As written before the record named its model: only the reload can tell.
      const { model, ...older } = readDeviceRecord(store.get("dev/d-1")) as Record<string, unknown>;
      expect(model).toBe("ds10");
      store.put("dev/d-1", older);
      const result = await a.reload(validateConfig(pendantD1(), "new.yaml"));
      expect(result.result).toBe("applied");
      await stopGateway(a);

      const b = adopt(await startGateway({ clock, store, config: pendantD1() }));
      await pendantPresses(b);
    });
  });

  it("a household removed by a reload leaves no away mode behind: added again, it is monitored after a restart too", async () => {
    const store = new MemoryStore();
    const clock = new FakeClock();
    const a = await start(store, clock);
    const ops = await client(a, OPS.name, OPS.password);
    await ops.subscribe(`linli/${SITE}/#`);
    await ops.publish(`linli/${SITE}/away/hh-2`, JSON.stringify({ away: true, reason: "hospital" }));
    await ops.waitFor((m) => m.topic.endsWith(`ops/result/${OPS.name}`) && m.json().target === "hh-2");
    expect(a.supervisor.isAway("hh-2")).toBe(true);
    const p2 = await client(a, "p-2", "pw-p2");
    await p2.publish("devices/ec200/p-2/up", pendantMsg(1, "press")); // the resident's activity
    await ops.waitFor((m) => m.topic === `${ALERTS}p1/EMERGENCY_CALL/p-2`);
    expect(store.get("hh/hh-2")).toBeDefined();
    const full = testConfig({ alerts: { escalation: { p1: "2m", p2: "5m" } } });
    // The flat's residents moved out: the household and its pendant leave the site ...
    const without = {
      ...full,
      households: (full.households ?? []).filter((h) => h.id !== "hh-2"),
      devices: (full.devices ?? []).filter((d) => d.id !== "p-2"),
    };
    expect((await a.reload(validateConfig(without, "out.yaml"))).result).toBe("applied");
    expect(a.supervisor.isAway("hh-2")).toBe(false);
    // ... and new ones moved in under the same ids: monitored, not away.
    expect((await a.reload(validateConfig(full, "in.yaml"))).result).toBe("applied");
    expect(a.supervisor.isAway("hh-2")).toBe(false);
    await stopGateway(a);

    const b = await start(store, clock);
    expect(b.supervisor.isAway("hh-2")).toBe(false);
    expect(store.get("away/hh-2")).toBeUndefined();
    // Not the old residents' last activity: only when the new household's first period started.
    expect(store.get("hh/hh-2")).toEqual({ activity: 0, from: clock.now() });
  });

  it("resumes supervision where it stood at the stop: the silence before the stop counts, the downtime does not", async () => {
    const store = new MemoryStore();
    const clock = new FakeClock();
    const lostAfter = 2 * 300 * S + 60 * S; // two heartbeat intervals (datasheet default 300 s) plus the grace
    const a = await start(store, clock);
    const p2 = await client(a, "p-2", "pw-p2");
    await p2.publish("devices/ec200/p-2/up", pendantMsg(1, null));
    await sleep(50);
    clock.advance(lostAfter - 60 * S); // p-2 silent for 10 minutes while the gateway runs
    const p1 = await client(a, "p-1", "pw-p1");
    await p1.publish("devices/ec200/p-1/up", pendantMsg(1, null));
    await sleep(50);
    await stopGateway(a);

    clock.advance(15 * MIN); // an update of 15 minutes: longer than a pendant's whole window
    const b = await start(store, clock);
    const ops = await client(b, OPS.name, OPS.password);
    await ops.subscribe(`${ALERTS}#`);
    await sleep(50);
    // Nobody is lost at start because the gateway was down.
    expect(ops.on("DEVICE_LOST/p-1")).toHaveLength(0);
    expect(ops.on("DEVICE_LOST/p-2")).toHaveLength(0);
    // p-2's 10 minutes of silence before the stop still count: lost 60 s after the start.
    clock.advance(55 * S);
    await sleep(50);
    expect(ops.on("DEVICE_LOST/p-2")).toHaveLength(0);
    clock.advance(10 * S);
    const lost = (await ops.waitFor((m) => m.topic.endsWith("DEVICE_LOST/p-2"))).json();
    expect(lost.state).toBe("active-unacknowledged");
    // p-1, heard just before the stop, has its whole window from the start.
    expect(ops.on("DEVICE_LOST/p-1")).toHaveLength(0);
    clock.advance(lostAfter - 75 * S);
    await sleep(50);
    expect(ops.on("DEVICE_LOST/p-1")).toHaveLength(0);
    clock.advance(15 * S);
    await ops.waitFor((m) => m.topic.endsWith("DEVICE_LOST/p-1"));
  });

  it("an uplink's seq is journaled with the alert it raises (one record), and its PUBACK waits for it; an uplink that changes no alert waits for no sync", async () => {
    // Which records a device's PUBACK waits for: put() records are committed (fdatasync'd under
    // "batch"), checkpoints are not (gateway/journal/journal.ts putCheckpoint).
    class LoggingStore extends MemoryStore {
      readonly ops: string[] = [];
      override put(key: string, value: unknown): void {
        this.ops.push(`put ${key}`);
        super.put(key, value);
      }
      override putCheckpoint(key: string, value: unknown): void {
        this.ops.push(`checkpoint ${key}`);
        super.putCheckpoint(key, value);
      }
      override putPair(k1: string, v1: unknown, k2: string, v2: unknown): void {
        this.ops.push(`pair ${k1} ${k2}`);
        super.putPair(k1, v1, k2, v2);
      }
    }
    const store = new LoggingStore();
    const a = await start(store, new FakeClock());
    const d1 = await client(a, "d-1", "pw-d1");
    const p1 = await client(a, "p-1", "pw-p1");
    const ops = await client(a, OPS.name, OPS.password);
    await ops.subscribe(`linli/${SITE}/#`);

    store.ops.length = 0;
    await d1.publish("devices/ds10/d-1/up", doorMsg(1, "open"));
    await d1.publish("devices/ds10/d-1/up", doorMsg(2, "closed"));
    await sleep(100);
    // Last-seen, the seqs and the household's activity: all checkpoints, nothing a commit waits for.
    expect(store.ops.length).toBeGreaterThanOrEqual(2);
    expect(store.ops.filter((op) => !op.startsWith("checkpoint "))).toEqual([]);
    expect(store.get("dev/d-1")).toMatchObject({ seqs: [1, 2] });

    store.ops.length = 0;
    await p1.publish("devices/ec200/p-1/up", pendantMsg(5, "press"));
    const call = (await ops.waitFor((m) => m.topic === `${ALERTS}p1/EMERGENCY_CALL/p-1`)).json();
    // A torn tail may keep the alert without the seq (a re-send is a repeat), never the seq without
    // the alert (a re-send would be dropped as a duplicate): the seq goes in one record with the
    // alert state (both or neither), the press's last, and one the commit waits for.
    const seqAt = store.ops.indexOf(`pair alert/${call.id} dev/p-1`);
    expect(seqAt).toBeGreaterThanOrEqual(0);
    expect(store.ops.filter((op) => op.includes(`alert/${call.id}`))).toEqual([
      `pair alert/${call.id} dev/p-1`,
    ]);
    // (A last-seen checkpoint of the device may come before the rules; nothing of it after the seq.)
    expect(store.ops.slice(seqAt + 1).filter((op) => op.endsWith(" dev/p-1"))).toEqual([]);
    expect(readDeviceRecord(store.get("dev/p-1"))).toMatchObject({ seqs: [5] });
  });

  it("a torn tail that kept a press's alert but not its seq: the re-send is a repeat of that alert, not lost", async () => {
    const { store, clock, call, deviceBefore } = await pressedAndStopped(7);
    // The power cut tore off the last record of the press: the seq (the records before it stand).
    if (deviceBefore === undefined) store.delete("dev/p-1");
    else store.put("dev/p-1", deviceBefore);

    const b = await start(store, clock);
    expect(b.engine.byAlertId(call.id as string)?.state).toBe("active-unacknowledged");
    // The pendant never saw its PUBACK and sends the press again: not a duplicate now, a repeat.
    const p1b = await client(b, "p-1", "pw-p1");
    await p1b.publish("devices/ec200/p-1/up", pendantMsg(7, "press"));
    await sleep(100);
    const after = b.engine.byAlertId(call.id as string);
    expect(after?.state).toBe("active-unacknowledged");
    expect(after?.count).toBe(2);
  });

  it("a condition whose causes changed is republished as `changed`; one journaled as `repeated` before 0.12.0 replays as it was", async () => {
    for (const written of ["now", "before 0.12.0"] as const) {
      const store = new MemoryStore();
      const clock = new FakeClock();
      const a = await start(store, clock);
      const d1 = await client(a, "d-1", "pw-d1");
      const ops = await client(a, OPS.name, OPS.password);
      await ops.subscribe(`${ALERTS}#`);
      await d1.publish("devices/ds10/d-1/up", doorMsg(1, "closed", { tamper: true }));
      const raised = (await ops.waitFor((m) => m.topic.endsWith("/TAMPER/d-1"))).json();
      // The same condition with another live cause (the DS-10 names one only: driven as a rule would).
      const tamper = a.engine.byAlertId(raised.id as string)!;
      a.engine
        .contextFor(tamper.subject)
        .condition("TAMPER", true, { priority: 2, causes: ["cover removed", "case opened"] });
      const changed = (
        await ops.waitFor(
          (m) => m.topic.endsWith("/TAMPER/d-1") && m.json().rev === (raised.rev as number) + 1,
        )
      ).json();
      expect(changed).toMatchObject({
        transition: "changed",
        count: 1,
        causes: ["cover removed", "case opened"],
      });
      expect(String(changed.message)).toMatch(/；情况有变化$/);
      await stopGateway(a);
      if (written !== "now") {
        // What a gateway before 0.12.0 journaled for the same change.
        const key = `alert/${raised.id}`;
        store.put(key, { ...(readAlertRecord(store.get(key)) as object), lastTransition: "repeated" });
      }

      const b = await start(store, clock);
      const after = [...(await retainedAlerts(b))].find(([topic]) => topic.endsWith("/TAMPER/d-1"))?.[1];
      expect(after, written).toMatchObject({
        id: raised.id,
        rev: changed.rev,
        transition: written === "now" ? "changed" : "repeated",
        causes: ["cover removed", "case opened"],
      });
      expect(String(after?.message), written).toMatch(/；情况有变化$/);
      await stopGateway(b);
    }
  });

  it("a change made while the alert was held goes out after a restart with a new rev, never an old one", async () => {
    const { store, clock, a, d1, ops, tamper: raised } = await tamperRaised();
    await ops.publish(
      `linli/${SITE}/shelve/${raised.id}`,
      JSON.stringify({ duration: "30m", reason: "cover" }),
    );
    await ops.waitFor((m) => m.topic.endsWith("/TAMPER/d-1") && m.json().transition === "shelved");
    // Shelved: the sensor's return to normal changes the alert's state without publishing it.
    await d1.publish("devices/ds10/d-1/up", doorMsg(2, "closed", { tamper: false }));
    await sleep(100);
    expect(a.engine.byAlertId(raised.id as string)?.state).toBe("cleared-unacknowledged");
    const published = new Map<string, string>(); // id:rev -> state
    for (const m of ops.on("/TAMPER/d-1"))
      if (m.payload.length > 0) published.set(`${m.json().id}:${m.json().rev}`, String(m.json().state));
    await stopGateway(a);

    const b = await start(store, clock);
    const retained = await retainedAlerts(b);
    const after = [...retained].find(([topic]) => topic.endsWith("/TAMPER/d-1"))?.[1];
    expect(after?.state).toBe("cleared-unacknowledged");
    const key = `${after?.id}:${after?.rev}`;
    if (published.has(key))
      expect(published.get(key), `${key} published before as another state`).toBe(after?.state);
    expect(after?.rev).toBe(Math.max(...[...published.keys()].map((k) => Number(k.split(":")[1]))) + 1);
    expect(b.engine.byAlertId(raised.id as string)?.rev).toBe(after?.rev); // journaled with its new rev
  });

  it("a power cut after states were published but before their sync: no rev or eventId is used again for another state", async () => {
    /** What a disk keeps: the map as of the last sync answered; `held` stops syncs from answering. */
    class DiskStore extends MemoryStore {
      held = false;
      disk = new Map<string, unknown>();
      private readonly waiting: Array<() => void> = [];
      override commit(done: () => void): void {
        this.commits++;
        this.afterSync(done);
      }
      override afterSync(done: () => void): void {
        if (this.held) this.waiting.push(done);
        else {
          this.disk = structuredClone(this.map);
          queueMicrotask(done);
        }
      }
      override syncNow(): void {
        super.syncNow();
        this.disk = structuredClone(this.map);
      }
      /** The power cut: what comes back is what was synced. */
      cut(): MemoryStore {
        const back = new MemoryStore();
        for (const [k, v] of this.disk) back.map.set(k, structuredClone(v));
        return back;
      }
    }
    const store = new DiskStore();
    const clock = new FakeClock();
    const a = await start(store, clock);
    const p1 = await client(a, "p-1", "pw-p1");
    const ops = await client(a, OPS.name, OPS.password);
    await ops.subscribe(`linli/${SITE}/#`);
    await p1.publish("devices/ec200/p-1/up", pendantMsg(7, "press"));
    const call = (await ops.waitFor((m) => m.topic === `${ALERTS}p1/EMERGENCY_CALL/p-1`)).json();
    await sleep(50);
    // From here the disk does not sync: the call window's end and two escalations are published
    // (their records written, not synced), then the power goes.
    store.held = true;
    clock.advance(2 * MIN + S);
    await ops.waitFor((m) => m.topic.includes("/escalations/p1/EMERGENCY_CALL/p-1"));
    clock.advance(4 * MIN);
    await ops.waitFor(
      (m) => m.topic.includes("/escalations/p1/EMERGENCY_CALL/p-1") && m.json().escalationLevel === 2,
    );
    await sleep(50);
    const states = new Map<number, string>(); // rev -> the state published under it
    const events = new Set<string>();
    for (const m of ops.messages as Received[]) {
      if (m.payload.length === 0) continue;
      if (m.topic === `${ALERTS}p1/EMERGENCY_CALL/p-1`)
        states.set(m.json().rev as number, m.json().state as string);
      if (m.topic.endsWith("/alerts/events")) events.add(m.json().eventId as string);
    }
    const lastPublished = Math.max(...states.keys());
    expect(lastPublished).toBeGreaterThan(1);
    const disk = store.cut();
    expect(readAlertRecord(disk.get(`alert/${call.id}`))?.rev).toBeLessThan(lastPublished);
    await stopGateway(a);

    // The same alert after the restart: republished and escalated again, never under an old rev.
    const b = await start(disk, clock);
    const ops2 = await client(b, OPS.name, OPS.password);
    await ops2.subscribe(`linli/${SITE}/#`);
    await sleep(100);
    clock.advance(10 * MIN);
    await ops2.waitFor((m) => m.topic.includes("/escalations/p1/EMERGENCY_CALL/p-1"));
    await sleep(50);
    const after = ops2
      .on(`${ALERTS}p1/EMERGENCY_CALL/p-1`)
      .filter((m) => m.payload.length > 0)
      .map((m) => m.json());
    expect(after.length).toBeGreaterThanOrEqual(2);
    for (const j of after) {
      expect(j.id).toBe(call.id);
      expect(j.rev as number, `rev ${j.rev} was published before the cut`).toBeGreaterThan(lastPublished);
    }
    for (const m of ops2.on("/alerts/events")) {
      const id = m.json().eventId as string;
      expect(events.has(id), `eventId ${id} was published before the cut`).toBe(false);
    }
  });
});

describe("an operator's persistent session across a gateway restart (real journal)", () => {
  /**
   * A console saves a persistent session subscribed to `topic` and goes away; a pendant presses
   * (seen by another operator), the gateway restarts, and the console comes back: `check` gets
   * the console and the alert it missed.
   */
  async function missedAcrossRestart(
    topic: string,
    check: (ops: TestClient, raised: Record<string, unknown>) => Promise<void>,
  ): Promise<void> {
    const dir = mkdtempSync(path.join(tmpdir(), "linli-session-"));
    const start = () =>
      Gateway.start({
        config: validateConfig(testConfig(), "test"),
        logger: createLogger({ level: "silent" }),
        dataDir: dir,
      });
    const clients: TestClient[] = [];
    let gw = await start();
    try {
      const consoleOpts = { clientId: "ops-console-1", clean: false };
      let ops = await connect(gw, OPS.name, OPS.password, consoleOpts);
      await ops.subscribe(topic);
      await ops.end();
      const p1 = await connect(gw, "p-1", "pw-p1");
      clients.push(p1);
      await p1.publish("devices/ec200/p-1/up", pendantMsg(7, "press"));
      const watcher = await connect(gw, "ops2", "ops2-pw");
      clients.push(watcher);
      await watcher.subscribe(`linli/${SITE}/alerts/#`);
      const raised = (await watcher.waitFor((m) => m.topic.endsWith("/EMERGENCY_CALL/p-1"))).json();
      await Promise.all(clients.splice(0).map((c) => c.end()));
      await gw.stop();

      gw = await start();
      ops = await connect(gw, OPS.name, OPS.password, consoleOpts);
      clients.push(ops);
      await check(ops, raised);
    } finally {
      await Promise.all(clients.splice(0).map((c) => c.end()));
      await gw.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it("receives the events published while it was away, also those from before the restart", async () => {
    await missedAcrossRestart(`linli/${SITE}/alerts/events`, async (ops, raised) => {
      const ev = (
        await ops.waitFor((m) => m.topic.endsWith("/alerts/events") && m.json().alertId === raised.id, 5000)
      ).json();
      expect(ev).toMatchObject({ transition: "raised", eventId: `${raised.id}:1` });
    });
  });

  it("gets each open alert's state once after the restart: the restored copy, not also the start's republication", async () => {
    await missedAcrossRestart(`linli/${SITE}/alerts/#`, async (ops) => {
      await ops.waitFor((m) => m.topic.endsWith("/EMERGENCY_CALL/p-1"), 5000);
      await sleep(300); // a second copy, if any
      const states = ops
        .on(`${ALERTS}p1/EMERGENCY_CALL/p-1`)
        .filter((m) => m.payload.length > 0)
        .map((m) => `${m.json().id}:${m.json().rev}`);
      expect(states.length).toBeGreaterThan(0);
      // Before, the restored state and its republication: the same id and rev twice.
      expect(states).toEqual([...new Set(states)]);
    });
  });

  it("a removed operator's saved session, or one of changed credentials, is deleted (by a reload, at a start), not handed to a new operator of the same name", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "linli-session-"));
    const OTHER = { name: "ops2", password: "ops2-pw" };
    const config = (ops: Array<{ name: string; password: string }>) =>
      validateConfig(testConfig({ operators: [...ops, OTHER] }), "test");
    const start = (ops: Array<{ name: string; password: string }>) =>
      Gateway.start({ config: config(ops), logger: createLogger({ level: "silent" }), dataDir: dir });
    const clients: TestClient[] = [];
    const consoleOpts = { clientId: "ops-console-1", clean: false };
    let seq = 7;
    /** A press the watcher saw: an event is queued for every session subscribed to events. */
    const press = async (gw: Gateway): Promise<void> => {
      const watcher = await connect(gw, OTHER.name, OTHER.password);
      clients.push(watcher);
      await watcher.subscribe(`linli/${SITE}/alerts/events`);
      const p1 = await connect(gw, "p-1", "pw-p1");
      clients.push(p1);
      await p1.publish("devices/ec200/p-1/up", pendantMsg(seq++, "press"));
      await watcher.waitFor((m) => m.topic.endsWith("/alerts/events"));
      await Promise.all(clients.splice(0).map((c) => c.end()));
    };
    /**
     * A console of `pw` that subscribes to nothing: what its session holds comes to it. `atLeast`
     * events are waited for (up to 10 s: a busy machine delivers late); with 0 a fixed wait, in
     * which none should come.
     */
    const eventsFor = async (gw: Gateway, pw: string, atLeast = 0): Promise<number> => {
      const c = await connect(gw, OPS.name, pw, consoleOpts);
      clients.push(c);
      await sleep(300);
      await press(gw);
      const count = () => c.on("/alerts/events").length;
      if (atLeast === 0) await sleep(200);
      for (const end = Date.now() + 10 * S; count() < atLeast && Date.now() < end; ) await sleep(20);
      const n = count();
      await Promise.all(clients.splice(0).map((x) => x.end()));
      return n;
    };
    const saveSession = async (gw: Gateway, pw: string): Promise<void> => {
      const c = await connect(gw, OPS.name, pw, consoleOpts);
      await c.subscribe(`linli/${SITE}/alerts/events`);
      await c.end();
    };
    let gw = await start([OPS]);
    try {
      await saveSession(gw, OPS.password);
      await press(gw);
      // The same credentials across a restart: the session (queued event, subscription) is kept.
      await gw.stop();
      gw = await start([OPS]);
      expect(await eventsFor(gw, OPS.password, 2)).toBeGreaterThanOrEqual(2);
      // A new password cannot be told from another person given the account: the session goes.
      await saveSession(gw, OPS.password);
      await press(gw);
      const renewed = { name: OPS.name, password: "ops-new-pw" };
      expect((await gw.reload(config([renewed]))).result).toBe("applied");
      expect(await eventsFor(gw, renewed.password)).toBe(0);

      // Removed by a reload, then another operator added under the same name: nothing of the old one.
      await press(gw);
      expect((await gw.reload(config([]))).result).toBe("applied");
      const newcomer = { name: OPS.name, password: "someone-else" };
      expect((await gw.reload(config([newcomer]))).result).toBe("applied");
      expect(await eventsFor(gw, newcomer.password)).toBe(0);

      // Removed while the gateway was stopped: the start deletes the session.
      await saveSession(gw, newcomer.password);
      await press(gw);
      await gw.stop();
      gw = await start([]);
      expect((await gw.reload(config([OPS]))).result).toBe("applied");
      expect(await eventsFor(gw, OPS.password)).toBe(0);
      await gw.stop();
      gw = await start([OPS]);
      expect(await eventsFor(gw, OPS.password)).toBe(0);

      // Removed and added again (another password) while the gateway was stopped: deleted at start.
      await saveSession(gw, OPS.password);
      await press(gw);
      await gw.stop();
      gw = await start([newcomer]);
      expect(await eventsFor(gw, newcomer.password)).toBe(0);
    } finally {
      await Promise.all(clients.splice(0).map((c) => c.end()));
      await gw.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
