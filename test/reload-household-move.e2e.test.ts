/**
 * A device moved to another household by a reload while its call is open (docs/reload.md): the
 * open alert is the record of where it was pressed, and keeps that household in every later
 * publish (escalation, acknowledgement, the restart's republication); a press after the move
 * names the new one. Real gateway and MQTT clients, gateway time on a FakeClock, one store for
 * two gateways in turn (a restart).
 */
import { describe, expect, it } from "vitest";
import { FakeClock } from "../core/clock.js";
import { validateConfig } from "../gateway/config/load.js";
import type { ConfigInput } from "../gateway/config/schema.js";
import { describeMove } from "../gateway/reload.js";
import { MemoryStore } from "../gateway/state/store.js";
import { gatewaysInTurn, OPS, pendantMsg, SITE, sleep, startGateway, testConfig } from "./support/harness.js";

const MIN = 60_000;
const CALL = `linli/${SITE}/alerts/p1/EMERGENCY_CALL/ec200-0102`;
const ESCALATION = `linli/${SITE}/escalations/p1/EMERGENCY_CALL/ec200-0102`;

/** The site with the pendant in `household`, with a name and location when given. */
function site(household: string, names: { name?: string; location?: string } = {}): ConfigInput {
  return testConfig({
    households: [
      { id: "hh-0101", name: "1号楼 101室", residentName: "张阿姨" },
      { id: "hh-0203", name: "2号楼 203室", residentName: "李大爷" },
    ],
    devices: [{ id: "ec200-0102", model: "ec200", password: "pw-0102", household, ...names }],
    alerts: { escalation: { p1: "2m", p2: "5m" } },
  });
}

describe("a device moved to another household with an open call", () => {
  const { client, adopt, stop } = gatewaysInTurn();

  /** A gateway with the pendant in hh-0101, an operator watching the site, and the pendant's press. */
  async function pressedIn0101(store: MemoryStore, clock: FakeClock, config = site("hh-0101")) {
    const a = adopt(await startGateway({ clock, boottime: () => clock.boottime(), store, config }));
    const desk = await client(a, OPS.name, OPS.password);
    await desk.subscribe(`linli/${SITE}/#`);
    const pendant = await client(a, "ec200-0102", "pw-0102");
    await pendant.publish("devices/ec200/ec200-0102/up", pendantMsg(1, "press"));
    const call = (await desk.waitFor((m) => m.topic === CALL)).json();
    return { a, desk, call };
  }

  it("keeps the household it was pressed in until it closes; a press after the move names the new one", async () => {
    const store = new MemoryStore();
    const clock = new FakeClock();
    const { a, desk, call } = await pressedIn0101(store, clock);
    expect(call).toMatchObject({ household: "hh-0101", residentName: "张阿姨" });

    const r = await a.reload(validateConfig(site("hh-0203"), "site.yaml"));
    expect(r.result).toBe("applied");
    const moved = r.result === "applied" ? r.moved : [];
    expect(moved).toEqual([{ id: "ec200-0102", from: "hh-0101", to: "hh-0203", open: 1, keep: ["hh-0101"] }]);
    expect(moved.map(describeMove)).toEqual([
      "ec200-0102 moved from hh-0101 to hh-0203: its 1 open alert keeps hh-0101",
    ]);

    // The escalation of the call pressed at 张阿姨's: the operator is told to call 张阿姨.
    clock.advance(2 * MIN + 1000);
    const esc = (await desk.waitFor((m) => m.topic === ESCALATION)).json();
    const escalated = (
      await desk.waitFor((m) => m.topic === CALL && m.json().transition === "escalated")
    ).json();
    for (const shown of [esc, escalated]) {
      expect(shown).toMatchObject({
        household: "hh-0101",
        householdName: "1号楼 101室",
        residentName: "张阿姨",
      });
      expect(shown.message).toContain("1号楼 101室 张阿姨");
      expect(shown.message).not.toContain("李大爷");
    }
    // A power cut; the gateway comes back with the edited file and replays the journal.
    await stop(a);

    const b = adopt(
      await startGateway({ clock, boottime: () => clock.boottime(), store, config: site("hh-0203") }),
    );
    expect(b.engine.byAlertId(call.id as string)?.view().household).toBe("hh-0101");
    const ops = await client(b, OPS.name, OPS.password);
    await ops.subscribe(`linli/${SITE}/#`);
    const republished = (await ops.waitFor((m) => m.topic === CALL)).json();
    expect(republished).toMatchObject({ id: call.id, household: "hh-0101", residentName: "张阿姨" });
    await ops.publish(`linli/${SITE}/ack/${call.id}`, JSON.stringify({ by: "duty-desk" }));
    // The call window ended meanwhile: acknowledging closes it (else it is acknowledged, and
    // closes when the window ends). Either way the published state is still 张阿姨's.
    const acked = (
      await ops.waitFor(
        (m) =>
          m.topic === CALL &&
          m.payload.length > 0 &&
          ["acknowledged", "closed"].includes(m.json().transition as string),
      )
    ).json();
    expect(acked).toMatchObject({ id: call.id, household: "hh-0101", residentName: "张阿姨" });
    expect(acked.message).toContain("1号楼 101室 张阿姨");
    clock.advance(30 * MIN);
    await sleep(50);
    expect(b.engine.byAlertId(call.id as string)?.isOpen ?? false).toBe(false);
    const p = await client(b, "ec200-0102", "pw-0102");
    await p.publish("devices/ec200/ec200-0102/up", pendantMsg(2, "press"));
    const next = (
      await ops.waitFor(
        (m) =>
          m.topic === CALL &&
          m.payload.length > 0 &&
          m.json().id !== call.id &&
          m.json().transition === "raised",
      )
    ).json();
    expect(next).toMatchObject({ household: "hh-0203", residentName: "李大爷" });
    expect(next.message).toContain("2号楼 203室 李大爷");
  });

  // The device's name and location are the household's too (a pendant "卧室" there, "客厅" in the
  // new flat): the open call shows them as they were where it was pressed, also after a restart.
  it("shows the device's name and location as they were in the household it was pressed in, also after a restart", async () => {
    const store = new MemoryStore();
    const clock = new FakeClock();
    const there = { name: "张阿姨的呼叫器", location: "卧室" };
    const moved = () => site("hh-0203", { name: "李大爷的呼叫器", location: "客厅" });
    const { a, desk, call } = await pressedIn0101(store, clock, site("hh-0101", there));
    expect(call).toMatchObject({ deviceName: "张阿姨的呼叫器", location: "卧室" });
    expect((await a.reload(validateConfig(moved(), "site.yaml"))).result).toBe("applied");
    const shownThere = (shown: Record<string, unknown>) => {
      expect(shown).toMatchObject({
        id: call.id,
        household: "hh-0101",
        deviceName: "张阿姨的呼叫器",
        location: "卧室",
      });
      expect(shown.message).toContain("张阿姨的呼叫器（卧室）");
      expect(shown.message).not.toContain("客厅");
    };
    clock.advance(2 * MIN + 1000);
    shownThere((await desk.waitFor((m) => m.topic === ESCALATION)).json());
    shownThere((await desk.waitFor((m) => m.topic === CALL && m.json().transition === "escalated")).json());
    // A later reload renaming the device in its new place changes nothing of the call's.
    expect(
      (await a.reload(validateConfig(site("hh-0203", { name: "新呼叫器", location: "客厅" }), "site.yaml")))
        .result,
    ).toBe("applied");
    expect((await a.reload(validateConfig(moved(), "site.yaml"))).result).toBe("applied");
    expect([...store.map.keys()].filter((k) => k.startsWith("devkept/"))).toEqual([`devkept/${call.id}`]);
    await stop(a);

    const b = adopt(await startGateway({ clock, boottime: () => clock.boottime(), store, config: moved() }));
    const ops = await client(b, OPS.name, OPS.password);
    await ops.subscribe(`linli/${SITE}/#`);
    shownThere((await ops.waitFor((m) => m.topic === CALL)).json());
    await ops.publish(`linli/${SITE}/ack/${call.id}`, JSON.stringify({ by: "duty-desk" }));
    shownThere(
      (
        await ops.waitFor(
          (m) =>
            m.topic === CALL &&
            m.payload.length > 0 &&
            ["acknowledged", "closed"].includes(m.json().transition as string),
        )
      ).json(),
    );
    clock.advance(30 * MIN);
    await sleep(50);
    expect(b.engine.byAlertId(call.id as string)?.isOpen ?? false).toBe(false);
    // A press in the new place names the device as the file now does; the closed call's copy goes.
    const p = await client(b, "ec200-0102", "pw-0102");
    await p.publish("devices/ec200/ec200-0102/up", pendantMsg(2, "press"));
    const next = (
      await ops.waitFor(
        (m) =>
          m.topic === CALL &&
          m.payload.length > 0 &&
          m.json().id !== call.id &&
          m.json().transition === "raised",
      )
    ).json();
    expect(next).toMatchObject({ household: "hh-0203", deviceName: "李大爷的呼叫器", location: "客厅" });
    expect((await b.reload(validateConfig(moved(), "site.yaml"))).result).toBe("applied");
    expect([...store.map.keys()].filter((k) => k.startsWith("devkept/"))).toEqual([]);
  });

  // The household the alert keeps, removed from the file: its names come from what the gateway
  // last read of it (journaled), not from the file; before, the alert said "住户 hh-0101" only.
  for (const when of ["in the same reload", "in a later reload"] as const)
    it(`still names the household it was pressed in once that household is removed ${when}, also after a restart`, async () => {
      const store = new MemoryStore();
      const clock = new FakeClock();
      const without = (): ConfigInput => {
        const c = site("hh-0203");
        return { ...c, households: (c.households ?? []).filter((h) => h.id !== "hh-0101") };
      };
      const { a, desk, call } = await pressedIn0101(store, clock);
      if (when === "in a later reload")
        expect((await a.reload(validateConfig(site("hh-0203"), "site.yaml"))).result).toBe("applied");
      expect((await a.reload(validateConfig(without(), "site.yaml"))).result).toBe("applied");
      const pressedAt = { household: "hh-0101", householdName: "1号楼 101室", residentName: "张阿姨" };

      clock.advance(2 * MIN + 1000);
      const escalated = (
        await desk.waitFor((m) => m.topic === CALL && m.json().transition === "escalated")
      ).json();
      expect(escalated).toMatchObject({ id: call.id, ...pressedAt });
      expect(escalated.message).toContain("1号楼 101室 张阿姨");
      await stop(a);

      const b = adopt(
        await startGateway({ clock, boottime: () => clock.boottime(), store, config: without() }),
      );
      const ops = await client(b, OPS.name, OPS.password);
      await ops.subscribe(`linli/${SITE}/#`);
      const republished = (await ops.waitFor((m) => m.topic === CALL)).json();
      expect(republished).toMatchObject({ id: call.id, ...pressedAt });
      expect(republished.message).toContain("1号楼 101室 张阿姨");
      // Closed, nothing names the household any more: what was kept of it goes.
      await ops.publish(`linli/${SITE}/ack/${call.id}`, JSON.stringify({ by: "duty-desk" }));
      await ops.waitFor((m) => m.topic === `linli/${SITE}/ops/result/${OPS.name}`);
      clock.advance(30 * MIN);
      await sleep(50);
      expect(b.engine.byAlertId(call.id as string)?.isOpen ?? false).toBe(false);
      expect((await b.reload(validateConfig(without(), "site.yaml"))).result).toBe("applied");
      expect([...store.map.keys()].filter((k) => k.startsWith("hhkept/"))).toEqual([]);
    });

  it("a household's own alert shows the household's edited names, and is closed when the household is removed", async () => {
    const clock = new FakeClock();
    const withWelfare = (resident: string | null) =>
      testConfig({
        households:
          resident === null
            ? []
            : [
                {
                  id: "hh-0101",
                  name: "1号楼 101室",
                  residentName: resident,
                  welfare: { enabled: true, period: "1h" },
                },
              ],
        // Welfare supervision watches a household with a device.
        devices:
          resident === null ? [] : [{ id: "d-1", model: "ds10", password: "pw-d1", household: "hh-0101" }],
        alerts: { escalation: { p1: "2m", p2: "5m" } },
      });
    const a = adopt(
      await startGateway({
        clock,
        boottime: () => clock.boottime(),
        store: new MemoryStore(),
        config: withWelfare("张阿姨"),
      }),
    );
    const desk = await client(a, OPS.name, OPS.password);
    await desk.subscribe(`linli/${SITE}/#`);
    const WELFARE = `linli/${SITE}/alerts/p2/WELFARE_CHECK/hh-0101`;
    clock.advance(61 * MIN);
    const raised = (await desk.waitFor((m) => m.topic === WELFARE)).json();
    expect(raised).toMatchObject({ household: "hh-0101", residentName: "张阿姨" });

    // The resident's name corrected: the same alert, open, names her as the file now does.
    const r = await a.reload(validateConfig(withWelfare("张桂英"), "site.yaml"));
    expect(r.result === "applied" && r.moved).toEqual([]);
    await desk.publish(`linli/${SITE}/ack/${raised.id}`, JSON.stringify({ by: "duty-desk" }));
    const acked = (
      await desk.waitFor(
        (m) => m.topic === WELFARE && m.payload.length > 0 && m.json().transition === "acknowledged",
      )
    ).json();
    expect(acked).toMatchObject({ id: raised.id, household: "hh-0101", residentName: "张桂英" });
    expect(acked.message).toContain("张桂英");

    // The household removed: its alert is closed, saying why, still its own.
    expect((await a.reload(validateConfig(withWelfare(null), "site.yaml"))).result).toBe("applied");
    const closed = (
      await desk.waitFor(
        (m) =>
          m.topic === `linli/${SITE}/alerts/events` &&
          m.json().alertId === raised.id &&
          m.json().transition === "closed",
      )
    ).json();
    expect(closed).toMatchObject({
      household: "hh-0101",
      reason: "household removed from the configuration",
    });
  });
});
