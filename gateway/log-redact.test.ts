import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { CENSOR, REDACTED_PATHS, redactContactPhones } from "./log-redact.js";

const PHONE = "138 0013 8000";

/** What pino writes for each object, time left out. */
function lines(opts: pino.LoggerOptions, objects: object[]): unknown[] {
  const out: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      out.push(String(chunk));
      cb();
    },
  });
  const log = pino({ ...opts, timestamp: false, base: undefined }, stream);
  for (const o of objects) log.info(o, "m");
  return out.map((l) => JSON.parse(l));
}

const cases: object[] = [
  { contactPhone: PHONE },
  { contactPhone: { contactPhone: PHONE } },
  { alert: { id: "a1", contactPhone: PHONE }, other: { id: "x" } },
  { households: [{ id: "hh-1", contactPhone: PHONE }, { id: "hh-2" }, "x", null] },
  { config: { households: [{ id: "hh-1", contactPhone: PHONE }] }, n: 1 },
  { config: { households: [{ id: "hh-1" }], contactPhone: PHONE } },
  { households: { contactPhone: PHONE } },
  { a: { contactPhone: undefined } },
  { a: [{ contactPhone: PHONE }], b: null, c: "contactPhone" },
  { a: { b: { contactPhone: PHONE } } },
  {
    alertId: "a1",
    code: "EMERGENCY_CALL",
    priority: 1,
    deviceId: "d",
    state: "raised",
    transition: "raised",
  },
];

describe("contact phones out of log lines, by hand", () => {
  it("redacts exactly what pino's own redact of the same paths does", () => {
    const reference = lines({ redact: { paths: [...REDACTED_PATHS], censor: CENSOR } }, cases);
    const ours = lines({ formatters: { log: redactContactPhones } }, cases);
    expect(ours).toEqual(reference);
    // The cases do exercise the censor: a redactor that changed nothing would fail above.
    expect(JSON.stringify(reference).match(/\[redacted\]/g)).toHaveLength(8);
  });

  it("returns the same object when no phone is in it (no copy), and never modifies the caller's object", () => {
    const plain = cases[cases.length - 1] as object;
    expect(redactContactPhones(plain)).toBe(plain);
    const alert = { alert: { id: "a1", contactPhone: PHONE }, households: [{ contactPhone: PHONE }] };
    const before = JSON.stringify(alert);
    const out = redactContactPhones(alert);
    expect(out).not.toBe(alert);
    expect(JSON.stringify(alert)).toBe(before);
    expect(JSON.stringify(out)).not.toContain(PHONE);
  });
});
