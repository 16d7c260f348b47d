import { describe, expect, it } from "vitest";
import { OWN_ABOVE, type RetainedPacket, RetainedStore, SLAB_BYTES } from "./retained-store.js";

async function all(store: RetainedStore, filters: string[]): Promise<RetainedPacket[]> {
  const out: RetainedPacket[] = [];
  for await (const p of store.stream(filters)) out.push(p as RetainedPacket);
  return out;
}

/** A deterministic generator (mulberry32): the same churn every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("RetainedStore", () => {
  it("keeps every topic's last payload byte-exact through replacements, deletions and compactions", async () => {
    const store = new RetainedStore();
    const rnd = random(22);
    const expected = new Map<string, Buffer>();
    // Slices handed out earlier (a delivery in flight, a session queue): never overwritten.
    const handedOut: [Buffer, Buffer][] = [];
    for (let i = 0; i < 20_000; i++) {
      const topic = `linli/s1/alerts/p${1 + (i % 3)}/K/dev-${Math.floor(rnd() * 2_000)}`;
      const r = rnd();
      const size =
        r < 0.1
          ? 0
          : r < 0.2
            ? 1 + Math.floor(rnd() * 16)
            : r < 0.21
              ? OWN_ABOVE + 1
              : 17 + Math.floor(rnd() * 2_500);
      // Multi-byte UTF-8 and every byte value: the bytes, not a string, are what must come back.
      const payload = Buffer.alloc(size);
      for (let b = 0; b < size; b++) payload[b] = Math.floor(rnd() * 256);
      if (size > 4) payload.write("告警", 0);
      // The caller's Buffer is a slice of a larger one it reuses: the store must copy.
      const wire = Buffer.concat([Buffer.from("xx"), payload, Buffer.from("yy")]).subarray(2, 2 + size);
      store.store({ topic, payload: wire, qos: 1 });
      wire.fill(0);
      if (size === 0) expected.delete(topic);
      else expected.set(topic, payload);
      const kept = store.get(topic);
      if (kept && i % 97 === 0) handedOut.push([kept.payload, Buffer.from(kept.payload)]);
      if (i % 50 === 0) expect(store.stats().sparse).toBe(0);
    }
    const stats = store.stats();
    expect(stats.compactions).toBeGreaterThan(10);
    expect(stats.messages).toBe(expected.size);
    // Sealed slabs at least 3/4 live (sparse 0) and filled to SLAB_BYTES - OWN_ABOVE at least.
    expect(stats.slabBytes).toBeLessThanOrEqual(
      (4 / 3) * stats.liveBytes * (SLAB_BYTES / (SLAB_BYTES - OWN_ABOVE)) + SLAB_BYTES,
    );
    const got = await all(store, ["#"]);
    expect(got.length).toBe(expected.size);
    for (const p of got) {
      expect(p.payload.equals(expected.get(p.topic) as Buffer)).toBe(true);
      expect({ cmd: p.cmd, retain: p.retain, qos: p.qos }).toEqual({ cmd: "publish", retain: true, qos: 1 });
    }
    for (const [slice, copy] of handedOut) expect(slice.equals(copy)).toBe(true);
  });

  it("packs payloads into slabs of retained payloads only, shares short ones, and gives large ones their own memory", () => {
    const store = new RetainedStore();
    for (let i = 0; i < 100; i++) store.store({ topic: `a/${i}`, payload: Buffer.alloc(1_000, i), qos: 1 });
    const a0 = store.get("a/0")?.payload as Buffer;
    expect(a0.buffer.byteLength).toBe(SLAB_BYTES);
    expect(store.get("a/1")?.payload.buffer).toBe(a0.buffer);
    expect(store.stats()).toMatchObject({ messages: 100, slabs: 2, liveBytes: 100_000 });
    store.store({ topic: "s/1", payload: Buffer.from("online"), qos: 1 });
    store.store({ topic: "s/2", payload: Buffer.from("online"), qos: 1 });
    expect(store.get("s/1")?.payload).toBe(store.get("s/2")?.payload);
    store.store({ topic: "big", payload: Buffer.alloc(OWN_ABOVE + 1, 7), qos: 0 });
    expect(store.get("big")?.payload.buffer.byteLength).toBe(OWN_ABOVE + 1);
    expect(store.stats().liveBytes).toBe(100_000);
  });

  it("drops a sealed slab once under 3/4 live, moving what is left of it", () => {
    const store = new RetainedStore();
    // 65 payloads of 1,000 bytes fill a slab; 130 fill two, the third is current.
    for (let i = 0; i < 140; i++)
      store.store({ topic: `t/${i}`, payload: Buffer.alloc(1_000, i % 256), qos: 1 });
    expect(store.stats().slabs).toBe(3);
    const first = store.get("t/0")?.payload.buffer;
    // Under 3/4 live at the 17th deletion (48,000 of 65,000 bytes): 48 payloads move to the third slab.
    for (let i = 0; i < 17; i++) store.store({ topic: `t/${i}`, payload: Buffer.alloc(0), qos: 1 });
    expect(store.stats()).toMatchObject({ slabs: 2, compactions: 1, liveBytes: 123_000 });
    for (let i = 17; i < 33; i++) store.store({ topic: `t/${i}`, payload: Buffer.alloc(0), qos: 1 });
    expect(store.stats()).toMatchObject({ slabs: 2, compactions: 1, messages: 107, liveBytes: 107_000 });
    for (let i = 33; i < 140; i++) {
      const p = store.get(`t/${i}`)?.payload as Buffer;
      expect(p.buffer).not.toBe(first);
      expect(p.equals(Buffer.alloc(1_000, i % 256))).toBe(true);
    }
  });

  it("streams the messages matching each filter, once per filter as aedes' own store", async () => {
    const store = new RetainedStore();
    for (const t of [
      "linli/s1/devices/a/status",
      "linli/s1/alerts/p1/FALL/a",
      "linli/s2/devices/b/status",
      "$SYS/x",
    ])
      store.store({ topic: t, payload: Buffer.from(`v:${t}`), qos: 1 });
    const topics = async (f: string[]) => (await all(store, f)).map((p) => p.topic).sort();
    expect(await topics(["linli/+/devices/+/status"])).toEqual([
      "linli/s1/devices/a/status",
      "linli/s2/devices/b/status",
    ]);
    expect(await topics(["linli/s1/#"])).toEqual(["linli/s1/alerts/p1/FALL/a", "linli/s1/devices/a/status"]);
    expect(await topics(["linli/s1/#", "linli/+/devices/a/status"])).toEqual([
      "linli/s1/alerts/p1/FALL/a",
      "linli/s1/devices/a/status",
      "linli/s1/devices/a/status",
    ]);
    expect((await topics(["#"])).length).toBe(3);
    store.store({ topic: "linli/s1/devices/a/status", payload: "", qos: 1 });
    expect(await topics(["linli/s1/#"])).toEqual(["linli/s1/alerts/p1/FALL/a"]);
  });
});
