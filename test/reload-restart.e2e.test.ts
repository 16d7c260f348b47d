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
import { gatewaysInTurn, OPS, pendantMsg, SITE, sleep, startGateway, testConfig } from "./support/harness.js";

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
    expect(r.result === "refused" && r.message).toMatch(
      /households\[2\]\.id: "p-1" is also the id of devices\[0\]/,
    );
    expect((await a.reload(validateConfig(site(), "site.yaml"))).result).toBe("applied");
    expect(a.engine.byAlertId(call.id as string)?.state).toBe("active-unacknowledged");
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
