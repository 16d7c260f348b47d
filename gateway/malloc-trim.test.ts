/**
 * The malloc trim as behaviour (never its timing or what it frees): glibc's is found where this
 * process runs on glibc and absent elsewhere; the trimmer trims once per series of full GCs,
 * never once stopped, and does nothing without a trim; a started gateway trims after a full GC,
 * and starts as well with none.
 */

import v8 from "node:v8";
import { runInNewContext } from "node:vm";
import { afterEach, describe, expect, it } from "vitest";
import { validateConfig } from "./config/load.js";
import { Gateway } from "./gateway.js";
import { createLogger } from "./log.js";
import { loadMallocTrim, MallocTrimmer } from "./malloc-trim.js";

// A full GC on demand, without --expose-gc on vitest's command line: a context made after the
// flag is set has `gc`.
v8.setFlagsFromString("--expose-gc");
const fullGc = runInNewContext("gc") as () => void;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `done()`, for at most 5 s (no full GC meanwhile: it would move a trim later). */
async function until(done: () => boolean): Promise<void> {
  const t0 = performance.now();
  while (!done() && performance.now() - t0 < 5_000) await sleep(25);
}

function onGlibc(): boolean {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)
    ?.header;
  return process.platform === "linux" && typeof header?.glibcVersionRuntime === "string";
}

describe("loadMallocTrim", () => {
  it("binds glibc's malloc_trim where the process runs on glibc, and nothing elsewhere", () => {
    const { trim, reason } = loadMallocTrim();
    if (onGlibc()) {
      expect(reason).toBeNull();
      expect(trim).not.toBeNull();
      expect([0, 1]).toContain(trim?.());
    } else {
      expect(trim).toBeNull();
      expect(reason).toEqual(expect.any(String));
    }
  });
});

describe("MallocTrimmer", () => {
  const trimmers: MallocTrimmer[] = [];
  afterEach(() => {
    for (const t of trimmers.splice(0)) t.stop();
  });

  it("trims after a series of full GCs, once per series, never once stopped", async () => {
    let calls = 0;
    const trimmer = new MallocTrimmer({ trim: () => ++calls && 1, delayMs: 500, maxDelayMs: 5_000 });
    trimmers.push(trimmer);
    fullGc();
    await sleep(300);
    expect(calls).toBe(0); // not started: not observing
    trimmer.start();
    // A series: each full GC within the delay moves the trim later.
    for (let i = 0; i < 3; i++) {
      fullGc();
      await sleep(30);
    }
    expect(calls).toBe(0);
    await until(() => calls > 0);
    await sleep(100);
    expect(calls).toBe(1);
    // Another series later: another trim.
    fullGc();
    await until(() => calls > 1);
    expect(calls).toBe(2);
    expect(trimmer.stats()).toMatchObject({ supported: true, trims: 2 });
    trimmer.stop();
    fullGc();
    await sleep(800);
    expect(calls).toBe(2);
  });

  it("a series that goes on is trimmed at most maxDelayMs after its first full GC", async () => {
    let calls = 0;
    const trimmer = new MallocTrimmer({ trim: () => ++calls && 1, delayMs: 200, maxDelayMs: 400 });
    trimmers.push(trimmer);
    trimmer.start();
    const t0 = performance.now();
    while (calls === 0 && performance.now() - t0 < 3_000) {
      fullGc();
      await sleep(50);
    }
    expect(calls).toBe(1);
    expect(performance.now() - t0).toBeLessThan(3_000);
  });

  it("a trim pending at stop() does not run", async () => {
    let calls = 0;
    const trimmer = new MallocTrimmer({ trim: () => ++calls && 1, delayMs: 200 });
    trimmers.push(trimmer);
    trimmer.start();
    fullGc();
    await sleep(20); // the GC is observed, the trim is pending
    trimmer.stop();
    await sleep(300);
    expect(calls).toBe(0);
  });

  it("is a no-op without a trim (musl, macOS, Windows, koffi absent)", async () => {
    const trimmer = new MallocTrimmer({ trim: null, delayMs: 10 });
    trimmers.push(trimmer);
    trimmer.start();
    fullGc();
    await sleep(50);
    trimmer.stop();
    expect(trimmer.stats()).toEqual({ supported: false, trims: 0, lastMs: 0, totalMs: 0 });
  });
});

describe("Gateway", () => {
  const config = validateConfig(
    {
      site: { id: "trim" },
      mqtt: { listeners: [{ host: "127.0.0.1", port: 0 }] },
      devices: [{ id: "p-1", model: "ec200", password: "pw-p1" }],
      log: { level: "silent" },
      metrics: { enabled: false },
    },
    "test",
  );
  const logger = createLogger({ level: "silent" });

  it("trims malloc after a full GC once started (the start's burst), not before", async () => {
    let calls = 0;
    let started = false;
    let beforeStart = 0;
    const gw = await Gateway.start({
      config,
      logger,
      store: null,
      mallocTrim: () => {
        if (!started) beforeStart++;
        calls++;
        return 0;
      },
    });
    try {
      started = true;
      fullGc();
      await until(() => calls > 0);
      expect(calls).toBeGreaterThan(0);
      expect(beforeStart).toBe(0);
      expect(gw.mallocTrimStats()).toMatchObject({ supported: true, trims: calls });
    } finally {
      await gw.stop();
    }
  }, 15_000);

  it("starts and stops as well where there is nothing to trim with", async () => {
    const gw = await Gateway.start({ config, logger, store: null, mallocTrim: null });
    try {
      fullGc();
      await sleep(50);
      expect(gw.mallocTrimStats()).toEqual({ supported: false, trims: 0, lastMs: 0, totalMs: 0 });
    } finally {
      await gw.stop();
    }
  });
});
