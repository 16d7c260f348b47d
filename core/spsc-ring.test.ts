import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import ts from "typescript";
import { afterAll, describe, expect, it } from "vitest";
import { Doorbell, drainByPriority, RECORD_HEADER_BYTES, SpscRing } from "./spsc-ring.js";

const bytes = (...v: number[]) => Uint8Array.from(v);
function drainAll(r: SpscRing, max = Number.POSITIVE_INFINITY): Array<[number, number[]]> {
  const out: Array<[number, number[]]> = [];
  r.drain(max, (tag, b, o, l) => out.push([tag, Array.from(b.subarray(o, o + l))]));
  return out;
}

describe("SpscRing (one thread)", () => {
  it("round-trips records in order with their tags, and nothing before publish", () => {
    const r = SpscRing.create(64);
    expect(r.capacity).toBe(64);
    const at = r.tryClaim(3, 2);
    r.bytes.set([7, 8], at);
    expect(r.isEmpty()).toBe(true);
    expect(drainAll(r)).toEqual([]);
    r.publish();
    expect(r.tryWrite(0, bytes())).toBe(true);
    expect(r.tryWrite(254, bytes(1, 2, 3, 4, 5))).toBe(true);
    expect(drainAll(r)).toEqual([
      [3, [7, 8]],
      [0, []],
      [254, [1, 2, 3, 4, 5]],
    ]);
    expect(r.isEmpty()).toBe(true);
  });

  it("refuses when full (nothing written) and accepts again once drained", () => {
    const r = SpscRing.create(64);
    // 12-byte records (4 header + 8 payload): 5 fit in 64 bytes (60), the 6th does not.
    for (let i = 0; i < 5; i++) expect(r.tryWrite(1, new Uint8Array(8).fill(i))).toBe(true);
    expect(r.tryWrite(1, new Uint8Array(8))).toBe(false);
    expect(r.tryClaim(1, 8)).toBe(-1);
    expect(r.tryWrite(1, bytes())).toBe(true); // 4 bytes left: a header-only record fits
    expect(r.tryWrite(1, bytes())).toBe(false);
    expect(drainAll(r, 2).map(([, p]) => p[0])).toEqual([0, 1]);
    expect(r.tryWrite(1, new Uint8Array(8).fill(9))).toBe(true);
    expect(drainAll(r).map(([, p]) => p[0])).toEqual([2, 3, 4, undefined, 9]);
  });

  it("positions: the consumer has passed a producer position once it drained every record before it, across the wrap", () => {
    const r = SpscRing.create(64, { startSeq: 2 ** 32 - 20 });
    r.tryWrite(1, new Uint8Array(8));
    const afterFirst = r.producerPosition;
    r.tryWrite(1, new Uint8Array(8));
    const afterSecond = r.producerPosition;
    expect(afterSecond).toBe((2 ** 32 - 20 + 32) >>> 0); // 12 + 8 of padding + 12: past 2^32
    expect(r.passed(afterFirst)).toBe(false);
    r.drain(1, () => {});
    expect(r.passed(afterFirst)).toBe(true);
    expect(r.passed(afterSecond)).toBe(false);
    r.drain(1, () => {});
    expect(r.passed(afterSecond)).toBe(true);
    expect(r.consumerPosition).toBe(afterSecond);
  });

  it("pads a record that would straddle the end and starts it at offset 0", () => {
    const r = SpscRing.create(64);
    for (let i = 0; i < 4; i++) r.tryWrite(1, new Uint8Array(8).fill(i)); // 48 bytes
    expect(drainAll(r)).toHaveLength(4);
    // 16 bytes to the end; a 20-byte record (16 payload) needs padding: 16 + 20 = 36 <= 64 free.
    const at = r.tryClaim(2, 16);
    expect(at).toBe(RECORD_HEADER_BYTES);
    r.bytes.fill(5, at, at + 16);
    r.publish();
    expect(r.used).toBe(16 + 20);
    expect(drainAll(r)).toEqual([[2, new Array(16).fill(5)]]);
    expect(r.used).toBe(0);
  });

  it("refuses a record whose padding would not fit, and rejects oversize records and bad tags", () => {
    const r = SpscRing.create(64);
    for (let i = 0; i < 4; i++) r.tryWrite(1, new Uint8Array(8)); // head at 48
    drainAll(r, 1); // tail 12: 28 bytes free, the 28-byte record would fit, but not with 16 of padding
    expect(r.free).toBe(28);
    expect(r.tryClaim(1, 24)).toBe(-1);
    drainAll(r, 2); // tail 36: 52 free >= 16 + 28
    expect(r.tryClaim(1, 24)).toBe(RECORD_HEADER_BYTES);
    r.publish();
    expect(drainAll(r).map(([t, p]) => [t, p.length])).toEqual([
      [1, 8],
      [1, 24],
    ]);
    const s = SpscRing.create(64);
    expect(() => s.tryClaim(1, 29)).toThrow(RangeError); // > capacity / 2 - 4
    expect(() => s.tryClaim(255, 1)).toThrow(RangeError);
  });

  it("odd lengths keep headers aligned across many wraps", () => {
    const r = SpscRing.create(256);
    let w = 0;
    let got = 0;
    for (let round = 0; round < 2000; round++) {
      while (r.tryWrite(round & 0x7f, new Uint8Array((w % 37) + 1).fill(w & 0xff))) w++;
      r.drain(3, (_tag, b, o, l) => {
        expect(l).toBe((got % 37) + 1);
        expect(b[o]).toBe(got & 0xff);
        expect(b[o + l - 1]).toBe(got & 0xff);
        got++;
      });
    }
    r.drain(Number.POSITIVE_INFINITY, () => got++);
    expect(got).toBe(w);
    expect(w).toBeGreaterThan(5000);
  });

  for (const start of [2 ** 31 - 40, 2 ** 32 - 40]) {
    it(`counters wrap correctly (starting at ${start})`, () => {
      const r = SpscRing.create(64, { startSeq: start });
      const seen: number[] = [];
      for (let i = 0; i < 100; i++) {
        expect(r.tryWrite(1, bytes(i, i + 1, i + 2))).toBe(true);
        expect(r.tryWrite(1, bytes(i + 100))).toBe(true);
        r.drain(10, (_t, b, o) => seen.push(b[o] as number));
      }
      expect(seen).toHaveLength(200);
      expect(seen.filter((_, i) => i % 2 === 0)).toEqual(Array.from({ length: 100 }, (_, i) => i));
      // Full-ring refusal still right after the wrap.
      let n = 0;
      while (r.tryWrite(1, new Uint8Array(4))) n++;
      expect(n).toBe(8);
      expect(r.used).toBe(64);
    });
  }

  it("batch drain: max records per call, padding not counted, tail published once per batch", () => {
    const r = SpscRing.create(1024);
    for (let i = 0; i < 10; i++) r.tryWrite(1, bytes(i));
    const before = r.free;
    expect(r.drain(4, () => undefined)).toBe(4);
    expect(r.free).toBe(before + 4 * 8);
    expect(r.drain(100, () => undefined)).toBe(6);
    expect(r.drain(100, () => undefined)).toBe(0);
  });

  it("a throwing handler consumes its record", () => {
    const r = SpscRing.create(64);
    r.tryWrite(1, bytes(1));
    r.tryWrite(1, bytes(2));
    expect(() =>
      r.drain(10, () => {
        throw new Error("x");
      }),
    ).toThrow("x");
    expect(drainAll(r)).toEqual([[1, [2]]]);
  });

  it("drainByPriority drains P1 first and between telemetry batches", () => {
    const bell = new Doorbell();
    const p1 = SpscRing.create(1024, { doorbell: bell });
    const tel = SpscRing.create(1024, { doorbell: bell });
    for (let i = 0; i < 6; i++) tel.tryWrite(0, bytes(i));
    p1.tryWrite(0, bytes(100));
    const order: string[] = [];
    drainByPriority([p1, tel], 4, (lane, _t, b, o) => {
      order.push(`${lane}:${b[o]}`);
      if (lane === 1 && b[o] === 1) p1.tryWrite(0, bytes(101)); // a P1 arrives during the telemetry batch
    });
    expect(order).toEqual(["0:100", "1:0", "1:1", "1:2", "1:3", "0:101"]);
  });

  it("Doorbell: sleep returns at once when data arrived, and a publish wakes a sleeper", async () => {
    const bell = new Doorbell();
    const r = SpscRing.create(64, { doorbell: bell });
    r.tryWrite(1, bytes(1));
    await bell.sleep(() => r.isEmpty());
    drainAll(r);
    const woke = bell.sleep(() => r.isEmpty(), 5_000);
    const t = performance.now();
    setTimeout(() => r.tryWrite(1, bytes(2)), 20);
    const keep = setTimeout(() => undefined, 6_000); // waitAsync does not hold the loop
    await woke;
    clearTimeout(keep);
    expect(performance.now() - t).toBeLessThan(2_000);
    expect(drainAll(r)).toEqual([[1, [2]]]);
  });
});

describe("SpscRing across two threads", () => {
  // The worker runs this very source, transpiled (core/spsc-ring.ts imports nothing).
  const dir = mkdtempSync(join(tmpdir(), "spsc-ring-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const src = readFileSync(new URL("./spsc-ring.ts", import.meta.url), "utf8");
  const js = ts.transpileModule(src, {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
  }).outputText;
  writeFileSync(join(dir, "spsc-ring.mjs"), js);
  // Producer: records of 1..64 bytes, each carrying its sequence number and a checksum.
  writeFileSync(
    join(dir, "producer.mjs"),
    `import { workerData, parentPort } from "node:worker_threads";
import { SpscRing } from "./spsc-ring.mjs";
const ring = SpscRing.attach(workerData.ring);
const n = workerData.count;
let full = 0;
for (let seq = 0; seq < n; ) {
  const len = 8 + (seq % 57);
  const at = ring.tryClaim(seq & 0x7f, len);
  if (at < 0) { ring.publish(); full++; continue; }
  const dv = new DataView(ring.bytes.buffer, ring.bytes.byteOffset + at, len);
  dv.setUint32(0, seq, true);
  let sum = 0;
  for (let i = 8; i < len; i++) { const v = (seq * 31 + i) & 0xff; ring.bytes[at + i] = v; sum = (sum + v) >>> 0; }
  dv.setUint32(4, sum, true);
  seq++;
  if ((seq & 15) === 0 || seq === n) ring.publish();
}
parentPort.postMessage({ full });
parentPort.close();
`,
  );

  it("1,000,000 records from a worker arrive exactly once, in order, intact", async () => {
    const count = 1_000_000;
    const bell = new Doorbell();
    const ring = SpscRing.create(1 << 14, { doorbell: bell, startSeq: 2 ** 32 - 4096 });
    const worker = new Worker(join(dir, "producer.mjs"), { workerData: { ring: ring.handle(), count } });
    let failed: Error | null = null;
    worker.on("error", (e) => (failed = e));
    const exited = new Promise<number>((resolve) => worker.once("exit", resolve));
    let next = 0;
    let bad = 0;
    let sleeps = 0;
    const deadline = performance.now() + 60_000;
    try {
      while (next < count && failed === null && performance.now() < deadline) {
        const n = ring.drain(4096, (tag, b, o, l) => {
          const dv = new DataView(b.buffer, b.byteOffset + o, l);
          const seq = dv.getUint32(0, true);
          let sum = 0;
          for (let i = 8; i < l; i++) sum = (sum + (b[o + i] as number)) >>> 0;
          if (seq !== next || tag !== (seq & 0x7f) || l !== 8 + (seq % 57) || sum !== dv.getUint32(4, true))
            bad++;
          next++;
        });
        if (n === 0) {
          sleeps++;
          await bell.sleep(() => ring.isEmpty(), 50);
        }
      }
      // The producer stops by itself once it has published the last record.
      const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r("timeout"), 10_000))]);
      expect(code).toBe(0);
    } finally {
      await worker.terminate();
    }
    expect(failed).toBeNull();
    expect(bad).toBe(0);
    expect(next).toBe(count);
    expect(ring.isEmpty()).toBe(true);
    expect(sleeps).toBeLessThan(count);
  }, 60_000);
});
