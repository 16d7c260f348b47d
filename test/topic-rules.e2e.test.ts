/**
 * Topic rules (docs/security.md "Access matrix") over a real gateway: no retained operator requests, wills
 * judged as publishes, device fields range-checked per datasheet (a side field never refuses an event).
 */

import { Encoder } from "cbor-x";
import { describe, expect, it } from "vitest";
import { doorMsg, OPS, pendantMsg, SITE, watchedSitePerTest } from "./support/harness.js";

describe("topic rules over a real gateway", () => {
  const site = watchedSitePerTest();

  async function until(cond: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  it("a retained ack is refused: the alert stays unacknowledged and no console is replayed the request", async () => {
    const p = await site.client("p-1", "pw-p1");
    await p.publish("devices/ec200/p-1/up", pendantMsg(1, "press"));
    const alert = (await site.ops.waitFor((m) => m.topic.includes("/alerts/p1/"))).json();

    const ops2 = await site.client("ops2", "ops2-pw");
    ops2.client.publish(`linli/${SITE}/ack/${alert.id}`, '{"by":"forger"}', { qos: 1, retain: true });
    await until(() => ops2.closedByServer, "the operator to be disconnected");
    expect(site.gw.counters.rejected("operator", "retain-not-allowed")).toBe(1);

    // A console connecting now gets the retained state: the open alert, and nothing on ack/.
    const late = await site.client(OPS.name, OPS.password);
    expect(await late.subscribe(`linli/${SITE}/#`)).toBe(1);
    const replayed = await late.waitFor((m) => m.topic.includes("/alerts/p1/"));
    expect(replayed.json()).toMatchObject({ id: alert.id, state: "active-unacknowledged" });
    // A normal ack afterwards is answered on ops/result; had the forged one been taken, this would be
    // "already-acknowledged".
    await site.ops.publish(`linli/${SITE}/ack/${alert.id}`, "{}");
    const result = await site.ops.waitFor((m) => m.topic === `linli/${SITE}/ops/result/${OPS.name}`);
    expect(result.json()).toMatchObject({ ok: true, result: "acknowledged" });
    // Retained replays carry the retain flag; the live ack just sent reaches `late` without it.
    expect(late.on("/ack/").filter((m) => m.retain)).toEqual([]);
  });

  it("a pendant's will (the datasheet's press) is processed as its message: EMERGENCY_CALL", async () => {
    const p = await site.client("p-1", "pw-p1", {
      will: {
        topic: "devices/ec200/p-1/up",
        payload: Buffer.from(pendantMsg(7, "press")),
        qos: 1,
        retain: false,
      },
    });
    p.client.stream.destroy();
    const m = await site.ops.waitFor((x) => x.topic === `linli/${SITE}/alerts/p1/EMERGENCY_CALL/p-1`);
    expect(m.json()).toMatchObject({ code: "EMERGENCY_CALL", causes: ["press"] });
  });

  it("an operator's will on ack/ is refused and counted; the alert stays unacknowledged", async () => {
    const p = await site.client("p-1", "pw-p1");
    await p.publish("devices/ec200/p-1/up", pendantMsg(1, "press"));
    const alert = (await site.ops.waitFor((m) => m.topic.includes("/alerts/p1/"))).json();
    const ops2 = await site.client("ops2", "ops2-pw", {
      will: { topic: `linli/${SITE}/ack/${alert.id}`, payload: Buffer.from("{}"), qos: 1, retain: false },
    });
    ops2.client.stream.destroy();
    await until(() => site.gw.counters.rejected("operator", "will-not-allowed") === 1, "the will's refusal");
    await site.ops.publish(`linli/${SITE}/ack/${alert.id}`, "{}");
    const result = await site.ops.waitFor((m) => m.topic === `linli/${SITE}/ops/result/${OPS.name}`);
    expect(result.json()).toMatchObject({ ok: true, result: "acknowledged" });
  });

  it("a seq outside uint32 is refused as out-of-range and counted", async () => {
    const p = await site.client("p-1", "pw-p1");
    await p.publish(
      "devices/ec200/p-1/up",
      '{"t":"hb","seq":4294967296,"ts":1763798400123,"bat":87,"rssi":-71}',
    );
    expect(site.gw.counters.rejected("ec200", "out-of-range")).toBe(1);
    // Refused, not accepted: no telemetry; the next valid message still goes through.
    await p.publish("devices/ec200/p-1/up", pendantMsg(2, null, { bat: 55 }));
    const battery = (m: { json(): Record<string, unknown> }) =>
      (m.json().metrics as { battery: { value: number } }).battery.value;
    await site.ops.waitFor((m) => m.topic.includes("/telemetry/") && battery(m) === 55);
    // One topic keeps its order: had the refused message been taken in, its reading would be here first.
    expect(site.ops.on("/telemetry/").map(battery)).toEqual([55]);
  });

  it.each([
    ["ts 1e308", { ts: 1e308 }, "ts", "field-out-of-range"],
    ["bat 101", { bat: 101 }, "bat", "field-out-of-range"],
    ["rssi -121", { rssi: -121 }, "rssi", "field-out-of-range"],
    ["bat 87.5", { bat: 87.5 }, "bat", "field-bad-type"],
    // The datasheet's "every message has" rssi: one without it is counted as missing.
    ["no rssi", { rssi: undefined }, "rssi", "field-missing"],
  ])("a press with %s raises its call; the field is dropped and counted", async (_, extra, field, reason) => {
    const p = await site.client("p-1", "pw-p1");
    await p.publish("devices/ec200/p-1/up", pendantMsg(1, "press", extra));
    const alert = await site.ops.waitFor((m) => m.topic === `linli/${SITE}/alerts/p1/EMERGENCY_CALL/p-1`);
    expect(alert.json()).toMatchObject({ state: "active-unacknowledged" });
    const reading = (await site.ops.waitFor((m) => m.topic.includes("/telemetry/"))).json();
    expect(reading.quality).toBe("field-dropped");
    if (field === "ts") expect(reading.deviceTime).toBeNull();
    else expect(reading.metrics).not.toHaveProperty(field === "bat" ? "battery" : "rssi");
    expect(site.gw.counters.rejected("ec200", reason)).toBe(1);
    expect(site.gw.counters.rejected("ec200", "out-of-range")).toBe(0);
  });

  it.each([
    ["2^64-1 in JSON", '{"t":"evt","seq":6100,"ts":18446744073709551615,"evt":"fall","bat":80,"rssi":-60}'],
    [
      "2^53+1 in CBOR",
      new Encoder({ useRecords: false, variableMapSize: true, largeBigIntToFloat: false }).encode({
        t: "evt",
        seq: 6100,
        ts: 2n ** 53n + 1n,
        evt: "fall",
        bat: 80,
        rssi: -60,
      }),
    ],
  ])(
    "a fall whose ts is a uint64 beyond 2^53-1 (%s) raises FALL_DETECTED; the device clock is invalid",
    async (_, payload) => {
      const p = await site.client("p-1", "pw-p1");
      await p.publish("devices/ec200/p-1/up", payload);
      await site.ops.waitFor((m) => m.topic === `linli/${SITE}/alerts/p1/FALL_DETECTED/p-1`);
      const reading = (await site.ops.waitFor((m) => m.topic.includes("/telemetry/"))).json();
      expect(reading).toMatchObject({ deviceTime: null, quality: "device-clock-invalid" });
      expect(site.gw.counters.snapshot().rejections.ec200 ?? {}).toEqual({});
    },
  );

  it("a DS-10 tamper with bat 101 raises TAMPER; the battery is dropped and counted", async () => {
    const d = await site.client("d-1", "pw-d1");
    await d.publish("devices/ds10/d-1/up", doorMsg(1, "closed", { tamper: true, bat: 101 }));
    await site.ops.waitFor((m) => m.topic === `linli/${SITE}/alerts/p2/TAMPER/d-1`);
    expect(site.gw.counters.rejected("ds10", "field-out-of-range")).toBe(1);
  });
});
