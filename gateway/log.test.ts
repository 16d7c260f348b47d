import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { FakeClock } from "../core/clock.js";
import { createLogger, RateLimitedLog } from "./log.js";

function sink() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split("\n").filter(Boolean));
      cb();
    },
  });
  return { lines, stream, json: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe("createLogger", () => {
  it("writes JSON lines to a destination", () => {
    const s = sink();
    const log = createLogger({ level: "info", format: "json", destination: s.stream });
    log.info({ device: "d1" }, "hello");
    log.debug("hidden");
    expect(s.json()).toMatchObject([{ level: 30, device: "d1", msg: "hello" }]);
  });

  it("auto picks JSON when the destination is not a TTY", () => {
    const s = sink();
    createLogger({ format: "auto", destination: s.stream }).warn("x");
    expect(s.json()[0]).toMatchObject({ level: 40, msg: "x" });
  });

  it("pretty is synchronous and human-readable", () => {
    const s = sink();
    const log = createLogger({ format: "pretty", destination: s.stream });
    log.info({ device: "d1" }, "hello");
    // Synchronous: the line is there without awaiting anything.
    expect(s.lines.join("\n")).toMatch(/INFO.*hello/);
    expect(s.lines.join("\n")).toContain("d1");
  });
});

describe("contact phones never reach a log line", () => {
  const PHONE = "138 0013 8000";
  for (const format of ["json", "pretty"] as const)
    it(`${format}: an alert, a household and a config that carry one are redacted`, () => {
      const s = sink();
      const log = createLogger({ format, destination: s.stream });
      log.info({ contactPhone: PHONE }, "top level");
      log.info({ alert: { id: "a1", contactPhone: PHONE } }, "alert");
      log.info({ households: [{ id: "hh-1", contactPhone: PHONE }] }, "households");
      log.info({ config: { households: [{ id: "hh-1", contactPhone: PHONE }] } }, "config");
      const text = s.lines.join("\n");
      expect(text).not.toContain(PHONE);
      expect(text.match(/\[redacted\]/g)).toHaveLength(4);
      expect(text).toContain("hh-1");
    });
});

describe("RateLimitedLog", () => {
  function setup(opts: { perKeyPerWindow?: number; maxKeys?: number } = {}) {
    const s = sink();
    const clock = new FakeClock();
    const logger = createLogger({ format: "json", destination: s.stream });
    const rl = new RateLimitedLog(logger, { windowMs: 60_000, clock, ...opts });
    return { s, clock, rl };
  }

  it("logs a babbling key once per window, then reports the suppressed count", () => {
    const { s, clock, rl } = setup();
    expect(rl.warn("dev-1", "crc", { device: "dev-1" }, "bad crc")).toBe(true);
    for (let i = 0; i < 99; i++) expect(rl.warn("dev-1", "crc", { device: "dev-1" }, "bad crc")).toBe(false);
    expect(s.lines).toHaveLength(1);
    expect(s.json()[0]).not.toHaveProperty("suppressed");
    clock.advance(59_999);
    rl.warn("dev-1", "crc", { device: "dev-1" }, "bad crc");
    expect(s.lines).toHaveLength(1);
    clock.advance(1);
    rl.warn("dev-1", "crc", { device: "dev-1" }, "bad crc");
    expect(s.json()[1]).toMatchObject({ device: "dev-1", msg: "bad crc", suppressed: 100, level: 40 });
    clock.advance(60_000);
    rl.info("dev-1", "crc", { device: "dev-1" }, "bad crc");
    expect(s.json()[2]).toMatchObject({ level: 30 });
    expect(s.json()[2]).not.toHaveProperty("suppressed");
  });

  it("allows: a no counts the line as suppressed, so ask-then-log reports what warn alone would", () => {
    const { s, clock, rl } = setup();
    expect(rl.allows("dev-1", "crc")).toBe(true);
    expect(rl.allows("dev-1", "crc")).toBe(true); // asking spends nothing: the line is not written yet
    rl.warn("dev-1", "crc", { device: "dev-1" }, "bad crc");
    for (let i = 0; i < 5; i++) expect(rl.allows("dev-1", "crc")).toBe(false);
    expect(rl.allows("dev-1", "timeout")).toBe(true);
    clock.advance(60_000);
    expect(rl.allows("dev-1", "crc")).toBe(true);
    rl.warn("dev-1", "crc", { device: "dev-1" }, "bad crc");
    expect(s.json()).toMatchObject([{ device: "dev-1" }, { device: "dev-1", suppressed: 5 }]);
  });

  it("honours perKeyPerWindow", () => {
    const { s, rl } = setup({ perKeyPerWindow: 3 });
    for (let i = 0; i < 10; i++) rl.warn("k", "r", {}, "m");
    expect(s.lines).toHaveLength(3);
  });

  it("keeps different reasons and keys independent", () => {
    const { s, rl } = setup();
    rl.warn("dev-1", "crc", {}, "a");
    rl.warn("dev-1", "crc", {}, "a");
    rl.warn("dev-1", "timeout", {}, "b");
    rl.warn("dev-2", "crc", {}, "c");
    expect(s.json().map((l) => l.msg)).toEqual(["a", "b", "c"]);
  });

  it("bounds the key map, evicting the oldest window first", () => {
    const { s, clock, rl } = setup({ maxKeys: 100 });
    for (let i = 0; i < 1000; i++) {
      rl.warn(`dev-${i}`, "crc", {}, "m");
      clock.advance(1);
    }
    expect(rl.size).toBe(100);
    expect(rl.evictions).toBe(900);
    expect(s.lines).toHaveLength(1000);
    // The newest pairs survived: dev-999 is still suppressed, dev-0 was forgotten.
    expect(rl.warn("dev-999", "crc", {}, "m")).toBe(false);
    expect(rl.warn("dev-0", "crc", {}, "m")).toBe(true);
  });

  it("counts suppressed lines lost to eviction", () => {
    const { clock, rl } = setup({ maxKeys: 1 });
    rl.warn("a", "r", {}, "m");
    rl.warn("a", "r", {}, "m");
    clock.advance(1);
    rl.warn("b", "r", {}, "m");
    expect(rl.lostSuppressed).toBe(1);
    expect(rl.size).toBe(1);
  });
});
