/**
 * The wall clock stepped while the gateway runs (NTP correcting a box that booted with a wrong
 * time, a clock set by hand): timers keep their elapsed time, and the times operators read and the
 * journal keeps move with the step (docs/durability.md). Real gateway, real MQTT clients, gateway
 * time on a FakeClock whose wall clock steps apart from its monotonic one.
 */
import { describe, expect, it } from "vitest";
import { FakeClock } from "../core/clock.js";
import { KEPT_TIMES, MOVED_TIMES } from "../gateway/moved-times.js";
import { readAlertRecord } from "../gateway/state/alert-record.js";
import { KEY } from "../gateway/state/keys.js";
import { type RunningRecord, readDeviceRecord } from "../gateway/state/recorder.js";
import { MemoryStore } from "../gateway/state/store.js";
import { doorMsg, gatewaysInTurn, OPS, pendantMsg, SITE, sleep, type TestClient } from "./support/harness.js";

const S = 1000;
const MIN = 60 * S;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const ALERTS = `linli/${SITE}/alerts/`;
/** A pendant's silence before it is lost: two heartbeats (300 s) and the grace (60 s). */
const LOST_AFTER = 660 * S;

describe("a step of the wall clock while running", () => {
  const { start, client, stop } = gatewaysInTurn();

  /** Moves gateway time (elapsed) and lets the MQTT messages it caused arrive. */
  async function advance(clock: FakeClock, ms: number): Promise<void> {
    clock.advance(ms);
    await sleep(60);
  }

  /**
   * An unacknowledged P1 (escalation due 2 min after it), a shelved TAMPER (1 h), a pendant heard
   * (lost 660 s later) and a household away for 2 h, all at `t0` on the monotonic clock.
   */
  async function scene(store: MemoryStore, clock: FakeClock) {
    const gw = await start(store, clock);
    const p1 = await client(gw, "p-1", "pw-p1");
    const p2 = await client(gw, "p-2", "pw-p2");
    const d1 = await client(gw, "d-1", "pw-d1");
    const ops = await client(gw, OPS.name, OPS.password);
    await ops.subscribe(`linli/${SITE}/#`);
    await p1.publish("devices/ec200/p-1/up", pendantMsg(4, "press"));
    await p2.publish("devices/ec200/p-2/up", pendantMsg(1, null));
    await d1.publish("devices/ds10/d-1/up", doorMsg(1, "closed", { tamper: true }));
    const call = (await ops.waitFor((m) => m.topic === `${ALERTS}p1/EMERGENCY_CALL/p-1`)).json();
    const tamper = (await ops.waitFor((m) => m.topic.includes("/TAMPER/d-1"))).json();
    await ops.publish(`linli/${SITE}/shelve/${tamper.id}`, JSON.stringify({ duration: "1h" }));
    await ops.waitFor((m) => m.topic.endsWith(`ops/result/${OPS.name}`) && m.json().target === tamper.id);
    await ops.publish(
      `linli/${SITE}/away/hh-2`,
      JSON.stringify({ away: true, until: clock.now() + 2 * HOUR }),
    );
    await ops.waitFor((m) => m.topic.endsWith(`ops/result/${OPS.name}`) && m.json().target === "hh-2");
    const t0 = clock.monotonic();
    expect(gw.engine.byAlertId(call.id as string)?.escalationNextAt).toBe(clock.now() + 2 * MIN);
    return { gw, ops, call, tamper, t0, wall0: clock.now() };
  }

  const escalations = (ops: TestClient) => ops.on("/escalations/p1/EMERGENCY_CALL/p-1");
  const lost = (ops: TestClient) => ops.on("/alerts/p2/DEVICE_LOST/p-2");
  const shelveEnded = (ops: TestClient) =>
    ops.on("/TAMPER/d-1").filter((m) => m.payload.length > 0 && m.json().transition === "shelve-expired");

  it.each([
    ["set back a day", -DAY],
    ["set forward an hour", HOUR],
  ])(
    "%s: the P1's escalation, DEVICE_LOST and the shelving's end come on schedule, none early",
    async (_, step) => {
      const store = new MemoryStore();
      const clock = new FakeClock();
      const { gw, ops, call, tamper, t0, wall0 } = await scene(store, clock);
      await advance(clock, 10 * S);
      clock.stepWall(step);
      await advance(clock, MIN); // the wheel checks at least once a minute
      expect((await gw.metrics.clockSteps.get()).values[0]?.value).toBe(1);
      // What operators read is on the new clock, republished; every change with a rev of its own.
      const alert = gw.engine.byAlertId(call.id as string);
      expect(alert?.escalationNextAt).toBe(wall0 + 2 * MIN + step);
      const retained = ops.on(`${ALERTS}p1/EMERGENCY_CALL/p-1`).map((m) => m.json());
      expect(retained.at(-1)).toMatchObject({ rev: alert?.rev, escalationNextAt: wall0 + 2 * MIN + step });
      expect(new Set(retained.map((r) => r.rev)).size).toBe(retained.length);
      expect(gw.engine.byAlertId(tamper.id as string)?.shelvedUntil).toBe(wall0 + HOUR + step);
      expect(gw.supervisor.awayStatuses()).toEqual([
        expect.objectContaining({ household: "hh-2", until: wall0 + 2 * HOUR + step }),
      ]);
      expect(escalations(ops)).toHaveLength(0);
      expect(lost(ops)).toHaveLength(0);
      expect(shelveEnded(ops)).toHaveLength(0);

      // The escalation: 2 minutes after the call, in elapsed time.
      await advance(clock, t0 + 2 * MIN - clock.monotonic() - S);
      expect(escalations(ops)).toHaveLength(0);
      await advance(clock, 2 * S);
      await ops.waitFor((m) => m.topic.endsWith("/escalations/p1/EMERGENCY_CALL/p-1"));
      // DEVICE_LOST: 660 s of silence.
      await advance(clock, t0 + LOST_AFTER - clock.monotonic() - S);
      expect(lost(ops)).toHaveLength(0);
      await advance(clock, 2 * S);
      const lostAlert = (await ops.waitFor((m) => m.topic.endsWith("/alerts/p2/DEVICE_LOST/p-2"))).json();
      // Silent for as long as it was, on the new clock (its last-seen time moved with the step).
      expect((lostAlert.detail as { silentForMs: number }).silentForMs).toBe(LOST_AFTER);
      // The shelving's end: an hour after it was shelved.
      await advance(clock, t0 + HOUR - clock.monotonic() - S);
      expect(shelveEnded(ops)).toHaveLength(0);
      await advance(clock, 2 * S);
      // Due now; on a loaded machine its message may take longer than advance()'s pause to arrive.
      await ops.waitFor(
        (m) =>
          m.topic.includes("/TAMPER/d-1") && m.payload.length > 0 && m.json().transition === "shelve-expired",
      );
      expect(shelveEnded(ops)).toHaveLength(1);
      expect(gw.engine.byAlertId(tamper.id as string)?.shelvedUntil).toBeNull();
    },
  );

  it.each([
    ["set back a day", -DAY],
    ["set forward an hour", HOUR],
  ])(
    "a crash right after a step (%s): the journal holds the moved times; escalation and supervision run on schedule",
    async (_, step) => {
      const store = new MemoryStore();
      const clock = new FakeClock();
      const { gw, call, tamper, t0, wall0 } = await scene(store, clock);
      await advance(clock, 10 * S);
      clock.stepWall(step);
      // The wheel's next tick (the call window's end, t0 + 60 s) sees the step, and the crash comes
      // then: no downtime since the last `running` record to count (up to 5 s in a real crash).
      await advance(clock, 50 * S);
      expect(gw.wheel.steps).toBe(1);
      // SIGKILL: what was put so far is what the next start finds (no clean stop's records).
      const left = new MemoryStore();
      for (const [k, v] of store.entries()) left.put(k, structuredClone(v));
      await stop(gw);

      const b = await start(left, clock);
      // Moved once (a clock set back: not again by the restart's own check).
      expect(b.engine.byAlertId(call.id as string)?.escalationNextAt).toBe(wall0 + 2 * MIN + step);
      expect(b.engine.byAlertId(tamper.id as string)?.shelvedUntil).toBe(wall0 + HOUR + step);
      expect(b.supervisor.awayStatuses()).toEqual([
        expect.objectContaining({ household: "hh-2", until: wall0 + 2 * HOUR + step }),
      ]);
      const ops = await client(b, OPS.name, OPS.password);
      await ops.subscribe(`linli/${SITE}/#`);
      await advance(clock, t0 + 2 * MIN - clock.monotonic() - S);
      expect(escalations(ops)).toHaveLength(0);
      expect(lost(ops)).toHaveLength(0);
      await advance(clock, 2 * S);
      await ops.waitFor((m) => m.topic.endsWith("/escalations/p1/EMERGENCY_CALL/p-1"));
      // p-2, heard at t0: lost 660 s after, not at the restart (a clock set forward) nor a day late.
      await advance(clock, t0 + LOST_AFTER - clock.monotonic() - S);
      expect(lost(ops)).toHaveLength(0);
      await advance(clock, 2 * S);
      await ops.waitFor((m) => m.topic.endsWith("/alerts/p2/DEVICE_LOST/p-2"));
    },
  );

  /** The journal's records by kind (key prefix; `running` left out: the marker, not a time operators read). */
  function journal(store: MemoryStore): Map<string, { kind: string; rec: Record<string, unknown> }> {
    const kinds: Record<string, string> = { alert: "alert", shelve: "shelve", away: "away", dev: "device" };
    Object.assign(kinds, { hh: "household", flood: "flood", service: "service", hold: "hold" });
    const out = new Map<string, { kind: string; rec: Record<string, unknown> }>();
    for (const [key, v] of store.entries()) {
      if (key === KEY.running) continue;
      const kind = kinds[key.split("/")[0] as string];
      expect(kind, `a record of a kind this test knows: ${key}`).toBeDefined();
      // As recovery reads them: a press's alert and device records are positional (recorder.ts).
      const rec = kind === "alert" ? readAlertRecord(v) : kind === "device" ? readDeviceRecord(v) : v;
      out.set(key, { kind: kind as string, rec: structuredClone(rec) as Record<string, unknown> });
    }
    return out;
  }

  /** "kind.field" of every time moved by exactly `ms` from `before` to `after`. */
  function movedBy(
    before: ReturnType<typeof journal>,
    after: ReturnType<typeof journal>,
    ms: number,
  ): string[] {
    const out = new Set<string>();
    for (const [key, { kind, rec }] of before) {
      const now = after.get(key)?.rec;
      for (const [field, v] of Object.entries(rec))
        if (typeof v === "number" && now?.[field] === v + ms) out.add(`${kind}.${field}`);
    }
    return [...out].sort();
  }

  it("a step while running and a clock set back across a restart move the same times: gateway/moved-times.ts's list, every other time a record holds being history", async () => {
    const store = new MemoryStore();
    const clock = new FakeClock();
    const { gw, ops, tamper } = await scene(store, clock);
    // An out-of-service device too (its `at` is history).
    await ops.publish(`linli/${SITE}/service/p-2`, JSON.stringify({ by: "ops", inService: false }));
    await ops.waitFor((m) => m.topic.endsWith(`ops/result/${OPS.name}`) && m.json().target === "p-2");
    // Past the P1's call window and first escalation (the next one 4 min on): the wheel's next
    // tick, which adopts the step, fires nothing that would change a time by itself.
    await advance(clock, 2 * MIN + 10 * S);
    expect(gw.engine.byAlertId(tamper.id as string)?.shelvedUntil).not.toBeNull();
    const before = journal(store);
    const restartStore = new MemoryStore();
    for (const [k, v] of store.entries()) restartStore.put(k, structuredClone(v));

    // Every time a record holds (a number that reads as a date within ten years) is on the list
    // of moved times or on the list of kept ones.
    const YEARS = 10 * 365 * DAY;
    for (const [key, { kind, rec }] of before)
      for (const [field, v] of Object.entries(rec))
        if (typeof v === "number" && Math.abs(v - clock.now()) < YEARS) {
          const listed = [
            ...Object.keys((MOVED_TIMES as Record<string, object>)[kind] ?? {}),
            ...((KEPT_TIMES as Record<string, readonly string[]>)[kind] ?? []),
          ];
          expect(listed, `${key}: ${field}`).toContain(field);
        }
    // What is set in this journal, of the list: what both paths must move.
    const expected = new Set<string>();
    for (const { kind, rec } of before.values())
      for (const field of Object.keys((MOVED_TIMES as Record<string, object>)[kind] ?? {}))
        if (typeof rec[field] === "number" && rec[field] !== 0) expected.add(`${kind}.${field}`);
    expect([...expected].sort()).toEqual([
      "alert.escalationNextAt",
      "alert.shelvedUntil",
      "alert.unackSince",
      "alert.windowUntil",
      "away.since",
      "away.until",
      "device.seen",
      "flood.since",
      "household.activity",
      "shelve.until",
    ]);

    // A step while running.
    clock.stepWall(-DAY);
    await advance(clock, MIN);
    expect(gw.wheel.steps).toBe(1);
    const live = movedBy(before, journal(store), -DAY);

    // The same journal, the clock set back as much across a restart.
    const lastRunning = (restartStore.get(KEY.running) as RunningRecord).at;
    const b = await start(restartStore, new FakeClock(lastRunning - DAY));
    const restarted = movedBy(before, journal(restartStore), -DAY);
    expect(b.engine.byAlertId(tamper.id as string)?.shelvedUntil).not.toBeNull();

    expect(live).toEqual([...expected].sort());
    expect(restarted).toEqual(live);
  });

  it("a system suspend of 8 hours is time passed, not a step: the P1's escalation, DEVICE_LOST and the shelving's end due during it come at the resume", async () => {
    const store = new MemoryStore();
    const clock = new FakeClock();
    const { gw, ops, call, wall0 } = await scene(store, clock);
    await advance(clock, 10 * S);
    clock.suspend(8 * HOUR);
    // Node's timers run on the monotonic clock, which stood still: the wheel wakes within a minute.
    await advance(clock, MIN);
    await ops.waitFor((m) => m.topic.endsWith("/escalations/p1/EMERGENCY_CALL/p-1"));
    await ops.waitFor((m) => m.topic.endsWith("/alerts/p2/DEVICE_LOST/p-2"));
    await ops.waitFor(
      (m) =>
        m.topic.includes("/TAMPER/d-1") && m.payload.length > 0 && m.json().transition === "shelve-expired",
    );
    expect(shelveEnded(ops)).toHaveLength(1);
    expect((await gw.metrics.clockSteps.get()).values[0]?.value ?? 0).toBe(0);
    expect(gw.wheel.steps).toBe(0);
    // Its next escalation counts from now, on the wall clock; nothing was moved by the suspend.
    const alert = gw.engine.byAlertId(call.id as string);
    expect(alert?.escalationLevel).toBeGreaterThanOrEqual(1);
    expect(alert?.escalationNextAt).toBeGreaterThan(wall0 + 8 * HOUR);
    expect(gw.clock.now()).toBe(clock.now());
  });

  it.each([
    ["set forward an hour", HOUR],
    ["set back a day", -DAY],
  ])(
    "%s, an away `until` given before the gateway adopts the step (on the new clock, as the operator's) ends away mode then, not moved a second time",
    async (_, step) => {
      const store = new MemoryStore();
      const clock = new FakeClock();
      const { gw, ops } = await scene(store, clock);
      clock.stepWall(step);
      // The wheel has not ticked since: the gateway still reads the old clock.
      expect(gw.wheel.steps).toBe(0);
      expect(gw.clock.now()).toBe(clock.now() - step);
      const until = clock.now() + 3 * HOUR;
      await ops.publish(`linli/${SITE}/away/hh-1`, JSON.stringify({ away: true, until }));
      const result = (
        await ops.waitFor((m) => m.topic.endsWith(`ops/result/${OPS.name}`) && m.json().target === "hh-1")
      ).json();
      expect(result.result).toBe("away");
      await advance(clock, MIN); // the wheel's next tick adopts the step
      expect(gw.wheel.steps).toBe(1);
      expect(gw.supervisor.awayStatuses()).toContainEqual(
        expect.objectContaining({ household: "hh-1", until }),
      );
      const ended = () =>
        ops
          .on("/households/hh-1/monitoring")
          .filter((m) => m.payload.length > 0 && m.json().state === "monitored");
      await advance(clock, until - clock.now() - S);
      expect(ended()).toHaveLength(0);
      await advance(clock, 2 * S);
      // Waited for: under load its message may take longer than advance's pause to arrive.
      await ops.waitFor(
        (m) =>
          m.topic.endsWith("/households/hh-1/monitoring") &&
          m.payload.length > 0 &&
          m.json().state === "monitored",
      );
      expect(ended()).toHaveLength(1);
    },
  );
});
