/**
 * Operator requests are attributed to the account that sent them (docs/security.md, docs/topics.md):
 * `by` stays the request's free text (a name at a shared desk), the authenticated account is
 * published beside it on the alert, its events, the monitoring status and the request's result
 * (ops/result, a command's result).
 */
import { describe, expect, it } from "vitest";
import { doorMsg, OPS, pendantMsg, SITE, watchedSitePerTest } from "./support/harness.js";

describe("operator requests carry the account", () => {
  const site = watchedSitePerTest();

  const result = (target: string) =>
    site.ops.waitFor((m) => m.topic === `linli/${SITE}/ops/result/${OPS.name}` && m.json().target === target);
  const event = (alertId: string, transition: string) =>
    site.ops.waitFor(
      (m) =>
        m.topic === `linli/${SITE}/alerts/events` &&
        m.json().alertId === alertId &&
        m.json().transition === transition,
    );

  it("an acknowledgement with another name's `by` publishes the account beside it", async () => {
    const p = await site.client("p-1", "pw-p1");
    await p.publish("devices/ec200/p-1/up", pendantMsg(1, "press"));
    const raised = (await site.ops.waitFor((m) => m.topic.includes("/alerts/p1/EMERGENCY_CALL/p-1"))).json();
    expect(raised).toMatchObject({ ackedBy: null, ackedByAccount: null });
    expect((await event(raised.id as string, "raised")).json()).toMatchObject({
      by: "device",
      account: null,
    });

    await site.ops.publish(`linli/${SITE}/ack/${raised.id}`, JSON.stringify({ by: "night" }));
    const acked = await site.ops.waitFor(
      (m) => m.topic.includes("/alerts/p1/EMERGENCY_CALL/p-1") && m.json().state === "active-acknowledged",
    );
    expect(acked.json()).toMatchObject({ ackedBy: "night", ackedByAccount: OPS.name });
    expect((await event(raised.id as string, "acknowledged")).json()).toMatchObject({
      by: "night",
      account: OPS.name,
    });
    expect((await result(raised.id as string)).json()).toMatchObject({
      ok: true,
      result: "acknowledged",
      account: OPS.name,
    });
    expect(site.gw.engine.byAlertId(raised.id as string)?.ackedByAccount).toBe(OPS.name);

    await site.ops.publish(`linli/${SITE}/cmd/p-1/locate`, JSON.stringify({ id: "r-1", by: "night" }));
    const located = await site.ops.waitFor((m) => m.topic === `linli/${SITE}/cmd/p-1/locate/result`);
    expect(located.json()).toMatchObject({ id: "r-1", by: "night", account: OPS.name, ok: true });
  });

  it("shelving, out of service and away mode carry the account too", async () => {
    const d = await site.client("d-1", "pw-d1");
    await d.publish("devices/ds10/d-1/up", doorMsg(1, "closed", { tamper: true }));
    const tamper = (await site.ops.waitFor((m) => m.topic.includes("/TAMPER/d-1"))).json();

    await site.ops.publish(
      `linli/${SITE}/shelve/${tamper.id}`,
      JSON.stringify({ by: "Wang Li", duration: "30m", reason: "cover loose" }),
    );
    expect((await event(tamper.id as string, "shelved")).json()).toMatchObject({
      by: "Wang Li",
      account: OPS.name,
    });
    expect(site.gw.engine.byAlertId(tamper.id as string)).toMatchObject({
      shelvedBy: "Wang Li",
      shelvedByAccount: OPS.name,
    });

    await site.ops.publish(
      `linli/${SITE}/service/d-1`,
      JSON.stringify({ by: "Li Ming", inService: false, reason: "replacing" }),
    );
    expect((await event(tamper.id as string, "out-of-service")).json()).toMatchObject({
      by: "Li Ming",
      account: OPS.name,
    });
    const held = await site.ops.waitFor(
      (m) => m.topic.includes("/TAMPER/d-1") && m.json().transition === "out-of-service",
    );
    expect(held.json()).toMatchObject({ outOfServiceBy: "Li Ming", outOfServiceByAccount: OPS.name });

    await site.ops.publish(`linli/${SITE}/away/hh-2`, JSON.stringify({ by: "daughter", away: true }));
    const monitoring = await site.ops.waitFor((m) => m.topic === `linli/${SITE}/households/hh-2/monitoring`);
    expect(monitoring.json()).toMatchObject({ state: "away", by: "daughter", account: OPS.name });
  });
});
