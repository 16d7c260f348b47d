/**
 * What the store keeps in memory of an alert state is not what operators see: an alert state is
 * written as a map and kept positional (DurableStore.put's `kept`, recovery's keepAs), and its
 * short strings are interned at recovery. A restart must republish every retained alert message
 * byte for byte as it was before, whichever form the state was read back in (docs/topics.md is
 * the contract).
 */
import { describe, expect, it } from "vitest";
import { FakeClock } from "../core/clock.js";
import type { Gateway } from "../gateway/gateway.js";
import { readAlertRecord } from "../gateway/state/alert-record.js";
import { PREFIX } from "../gateway/state/keys.js";
import { MemoryStore } from "../gateway/state/store.js";
import { doorMsg, gatewaysInTurn, OPS, pendantMsg, type Received, SITE, sleep } from "./support/harness.js";

const ALERTS = `linli/${SITE}/alerts/`;

describe("restart: retained alert messages byte-identical whatever form the state was kept in", () => {
  const { start, client, stop } = gatewaysInTurn();

  /** Every retained alert message a console that just connected receives: topic -> bytes. */
  async function retainedBytes(gw: Gateway): Promise<Map<string, Buffer>> {
    const ops = await client(gw, OPS.name, OPS.password);
    await ops.subscribe(`${ALERTS}#`);
    await sleep(150);
    const out = new Map<string, Buffer>();
    // The flood status and the alerts summary are the gateway's, not an alert's (the flood window
    // restarts with the process; the summary carries the time it was published).
    for (const m of ops.messages as Received[])
      if (m.retain && m.payload.length > 0 && !m.topic.endsWith("/flood") && !m.topic.endsWith("/summary"))
        out.set(m.topic, m.payload);
    return out;
  }

  /** The store as a version that kept maps would hold it: every alert state as a map. */
  function asMaps(store: MemoryStore): MemoryStore {
    const maps = new MemoryStore();
    for (const [k, v] of store.map) {
      const r = k.startsWith(PREFIX.alert) ? readAlertRecord(v) : null;
      maps.map.set(k, r === null ? structuredClone(v) : structuredClone(r));
    }
    return maps;
  }

  it("republishes the same bytes from positional and from map states", async () => {
    const store = new MemoryStore();
    const clock = new FakeClock();
    const a = await start(store, clock);
    const p1 = await client(a, "p-1", "pw-p1");
    const p2 = await client(a, "p-2", "pw-p2");
    const d1 = await client(a, "d-1", "pw-d1");
    const ops = await client(a, OPS.name, OPS.password);
    await ops.subscribe(`linli/${SITE}/#`);
    await p1.publish("devices/ec200/p-1/up", pendantMsg(10, "press"));
    await p2.publish("devices/ec200/p-2/up", pendantMsg(20, "press"));
    await d1.publish("devices/ds10/d-1/up", doorMsg(30, "closed", { tamper: true }));
    const call2 = (await ops.waitFor((m) => m.topic === `${ALERTS}p1/EMERGENCY_CALL/p-2`)).json();
    await ops.waitFor((m) => m.topic.startsWith(`${ALERTS}p2/TAMPER/d-1`));
    // An acknowledgement is written by the recorder's put (a map on disk, kept positional).
    await ops.publish(`linli/${SITE}/ack/${call2.id}`, JSON.stringify({ note: "on my way" }));
    await ops.waitFor((m) => m.topic.endsWith(`ops/result/${OPS.name}`) && m.json().target === call2.id);
    await sleep(50);
    const before = await retainedBytes(a);
    expect(before.size).toBe(3);
    await stop(a);

    // Kept positional: every alert state this store holds is an array (the ack's included).
    const kept = [...store.map].filter(([k]) => k.startsWith(PREFIX.alert));
    expect(kept).toHaveLength(3);
    for (const [k, v] of kept) expect(Array.isArray(v), k).toBe(true);
    const maps = asMaps(store);

    const b = await start(store, clock);
    const fromPositional = await retainedBytes(b);
    await stop(b);
    const c = await start(maps, clock);
    const fromMaps = await retainedBytes(c);
    // Read as maps, the states are kept positional from recovery on (keepAs).
    for (const [k, v] of maps.map) if (k.startsWith(PREFIX.alert)) expect(Array.isArray(v), k).toBe(true);
    await stop(c);

    expect([...fromPositional.keys()].sort()).toEqual([...before.keys()].sort());
    expect([...fromMaps.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [topic, bytes] of before) {
      expect(fromPositional.get(topic)?.equals(bytes), topic).toBe(true);
      expect(fromMaps.get(topic)?.equals(bytes), topic).toBe(true);
    }
  });
});
